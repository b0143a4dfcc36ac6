package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Result is the outcome of one non-blank input line: a record, or the
// rejection that says why there is none.
type Result struct {
	Line      int
	Record    flywheel.LogRecord
	Rejection *Rejection
}

// Reader reads records from JSONL, one line at a time, with no limit on line
// length below Options.MaxLineBytes. Blank lines are skipped. It is not safe
// for concurrent use.
type Reader struct {
	r     *bufio.Reader
	opts  Options
	line  int
	bytes int64
	buf   []byte
}

// NewReader returns a Reader over r.
func NewReader(r io.Reader, opts Options) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 256<<10), opts: opts.WithDefaults()}
}

// BytesRead returns how many input bytes have been consumed so far.
func (r *Reader) BytesRead() int64 { return r.bytes }

// Next returns the next non-blank line's result. It returns io.EOF at the
// end of the input and any other read error as it comes; a bad line is not
// an error but a Result with a Rejection.
func (r *Reader) Next() (Result, error) {
	for {
		data, tooLong, err := r.readLine()
		if err != nil && !errors.Is(err, io.EOF) {
			return Result{}, fmt.Errorf("read line %d: %w", r.line+1, err)
		}
		if err != nil && len(data) == 0 && !tooLong {
			return Result{}, io.EOF
		}
		r.line++
		if tooLong {
			return Result{Line: r.line, Rejection: &Rejection{
				Line: r.line, Reason: fmt.Sprintf("line longer than %d bytes", r.opts.MaxLineBytes),
			}}, nil
		}
		if len(bytes.TrimSpace(data)) == 0 {
			if err != nil {
				return Result{}, io.EOF
			}
			continue
		}
		rec, rej := ParseLine(data, r.line, r.opts)
		return Result{Line: r.line, Record: rec, Rejection: rej}, nil
	}
}

// readLine reads one line without its newline. A line over MaxLineBytes is
// consumed to its end and reported as tooLong. err is io.EOF on the last
// line when it has no newline (data is then still valid).
func (r *Reader) readLine() (data []byte, tooLong bool, err error) {
	r.buf = r.buf[:0]
	for {
		chunk, err := r.r.ReadSlice('\n')
		r.bytes += int64(len(chunk))
		if !tooLong {
			if len(r.buf)+len(chunk) > r.opts.MaxLineBytes+2 { // room for "\r\n"
				tooLong = true
				r.buf = r.buf[:0]
			} else {
				r.buf = append(r.buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if tooLong {
			return nil, true, err
		}
		line := bytes.TrimRight(r.buf, "\r\n")
		if len(line) > r.opts.MaxLineBytes {
			return nil, true, err
		}
		return line, false, err
	}
}
