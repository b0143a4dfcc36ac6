// Package gguf reads and writes GGUF files, the model format of llama.cpp:
// a header, typed key-value metadata, tensor descriptions and aligned
// tensor data. It supports what the local platform's models use: scalar,
// string and array metadata and F32 tensors (other tensor types are kept
// as raw bytes when read).
package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// Magic is the first four bytes of every GGUF file ("GGUF").
const Magic = 0x46554747

// Version is the GGUF version this package writes.
const Version = 3

// AlignmentDefault is the tensor data alignment when general.alignment is
// not set.
const AlignmentDefault = 32

// ValueType is the type tag of a metadata value.
type ValueType uint32

// Metadata value types, as the GGUF specification numbers them.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

// TensorType is the ggml element type of a tensor.
type TensorType uint32

// Tensor types used here (ggml's numbering).
const (
	TensorF32 TensorType = 0
	TensorF16 TensorType = 1
)

// KV is one metadata entry. Value holds one of: uint8, int8, uint16, int16,
// uint32, int32, float32, bool, string, uint64, int64, float64, or a slice
// of one of them ([]string, []int32, []float32, ...).
type KV struct {
	Key   string
	Value any
}

// Tensor is one tensor. Dims are in ggml order (innermost first: the
// reverse of a row-major shape). For F32 tensors Data holds the values;
// for other types Raw holds the bytes as stored.
type Tensor struct {
	Name string
	Dims []uint64
	Type TensorType
	Data []float32
	Raw  []byte
}

// Elements returns the number of elements of t.
func (t *Tensor) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// File is a GGUF file in memory.
type File struct {
	KVs     []KV
	Tensors []Tensor
}

// Get returns the value of key and whether it is present.
func (f *File) Get(key string) (any, bool) {
	for _, kv := range f.KVs {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Set replaces the value of key, or appends it.
func (f *File) Set(key string, v any) {
	for i := range f.KVs {
		if f.KVs[i].Key == key {
			f.KVs[i].Value = v
			return
		}
	}
	f.KVs = append(f.KVs, KV{Key: key, Value: v})
}

// String returns the string value of key, or "" when absent or not a string.
func (f *File) String(key string) string {
	v, _ := f.Get(key)
	s, _ := v.(string)
	return s
}

// Uint returns an integer value of key as uint64 and whether it is present
// and integral.
func (f *File) Uint(key string) (uint64, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// Tensor returns the tensor called name, or nil.
func (f *File) Tensor(name string) *Tensor {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i]
		}
	}
	return nil
}

func (f *File) alignment() uint64 {
	if a, ok := f.Uint("general.alignment"); ok && a > 0 {
		return a
	}
	return AlignmentDefault
}

// WriteFile writes f to path atomically (through a temporary file).
func (f *File) WriteFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".gguf-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := f.Write(w); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	return nil
}

// Write encodes f in GGUF version 3.
func (f *File) Write(w io.Writer) error {
	cw := &countWriter{w: w}
	e := encoder{w: cw}
	e.u32(Magic)
	e.u32(Version)
	e.u64(uint64(len(f.Tensors)))
	e.u64(uint64(len(f.KVs)))
	for _, kv := range f.KVs {
		e.str(kv.Key)
		if err := e.value(kv.Value, true); err != nil {
			return fmt.Errorf("encode metadata %q: %w", kv.Key, err)
		}
	}
	align := f.alignment()
	offsets := make([]uint64, len(f.Tensors))
	var off uint64
	for i := range f.Tensors {
		t := &f.Tensors[i]
		size, err := t.byteSize()
		if err != nil {
			return err
		}
		offsets[i] = off
		off += size
		off = pad(off, align)
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(offsets[i])
	}
	if e.err != nil {
		return fmt.Errorf("write header: %w", e.err)
	}
	e.zeros(pad(cw.n, align) - cw.n)
	start := cw.n
	buf := make([]byte, 0, 1<<16)
	for i := range f.Tensors {
		t := &f.Tensors[i]
		e.zeros(start + offsets[i] - cw.n)
		if t.Type == TensorF32 && t.Raw == nil {
			for j := 0; j < len(t.Data); j += 1 << 14 {
				chunk := t.Data[j:min(j+1<<14, len(t.Data))]
				buf = buf[:0]
				for _, v := range chunk {
					buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
				}
				e.bytes(buf)
			}
		} else {
			e.bytes(t.Raw)
		}
	}
	if e.err != nil {
		return fmt.Errorf("write tensor data: %w", e.err)
	}
	return nil
}

func (t *Tensor) byteSize() (uint64, error) {
	n := t.Elements()
	switch {
	case t.Type == TensorF32 && t.Raw == nil:
		if uint64(len(t.Data)) != n {
			return 0, fmt.Errorf("tensor %s: %d values for dims %v (%d elements)", t.Name, len(t.Data), t.Dims, n)
		}
		return 4 * n, nil
	case t.Raw != nil:
		return uint64(len(t.Raw)), nil
	}
	return 0, fmt.Errorf("tensor %s: type %d without raw data", t.Name, t.Type)
}

func pad(n, align uint64) uint64 {
	return (n + align - 1) / align * align
}

type countWriter struct {
	w io.Writer
	n uint64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

type encoder struct {
	w   io.Writer
	err error
	b   [8]byte
}

func (e *encoder) bytes(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}

func (e *encoder) zeros(n uint64) {
	var z [64]byte
	for n > 0 {
		k := min(n, 64)
		e.bytes(z[:k])
		n -= k
	}
}

func (e *encoder) u32(v uint32) { binary.LittleEndian.PutUint32(e.b[:4], v); e.bytes(e.b[:4]) }
func (e *encoder) u64(v uint64) { binary.LittleEndian.PutUint64(e.b[:8], v); e.bytes(e.b[:8]) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.bytes([]byte(s)) }

// value writes v, preceded by its type tag when tagged is true.
func (e *encoder) value(v any, tagged bool) error {
	tag := func(t ValueType) {
		if tagged {
			e.u32(uint32(t))
		}
	}
	switch x := v.(type) {
	case uint8:
		tag(TypeUint8)
		e.bytes([]byte{x})
	case int8:
		tag(TypeInt8)
		e.bytes([]byte{byte(x)})
	case uint16:
		tag(TypeUint16)
		binary.LittleEndian.PutUint16(e.b[:2], x)
		e.bytes(e.b[:2])
	case int16:
		tag(TypeInt16)
		binary.LittleEndian.PutUint16(e.b[:2], uint16(x))
		e.bytes(e.b[:2])
	case uint32:
		tag(TypeUint32)
		e.u32(x)
	case int32:
		tag(TypeInt32)
		e.u32(uint32(x))
	case float32:
		tag(TypeFloat32)
		e.u32(math.Float32bits(x))
	case bool:
		tag(TypeBool)
		b := byte(0)
		if x {
			b = 1
		}
		e.bytes([]byte{b})
	case string:
		tag(TypeString)
		e.str(x)
	case uint64:
		tag(TypeUint64)
		e.u64(x)
	case int64:
		tag(TypeInt64)
		e.u64(uint64(x))
	case float64:
		tag(TypeFloat64)
		e.u64(math.Float64bits(x))
	case []string:
		return writeArray(e, tagged, TypeString, x)
	case []int32:
		return writeArray(e, tagged, TypeInt32, x)
	case []uint32:
		return writeArray(e, tagged, TypeUint32, x)
	case []float32:
		return writeArray(e, tagged, TypeFloat32, x)
	case []uint8:
		return writeArray(e, tagged, TypeUint8, x)
	case []int64:
		return writeArray(e, tagged, TypeInt64, x)
	case []bool:
		return writeArray(e, tagged, TypeBool, x)
	default:
		return fmt.Errorf("unsupported metadata type %T", v)
	}
	return nil
}

func writeArray[T any](e *encoder, tagged bool, elem ValueType, xs []T) error {
	if tagged {
		e.u32(uint32(TypeArray))
	}
	e.u32(uint32(elem))
	e.u64(uint64(len(xs)))
	for _, x := range xs {
		if err := e.value(x, false); err != nil {
			return err
		}
	}
	return nil
}

// ErrFormat is returned for data that is not a valid GGUF file.
var ErrFormat = errors.New("not a valid GGUF file")

// ReadFile reads a whole GGUF file.
func ReadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open model file: %w", err)
	}
	defer fh.Close()
	f, err := Read(bufio.NewReaderSize(fh, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return f, nil
}

// maxCount bounds counts read from a file so that corrupt input cannot make
// the reader allocate unbounded memory.
const maxCount = 1 << 28

// Read decodes a GGUF file (versions 2 and 3).
func Read(r io.Reader) (*File, error) {
	cr := &countReader{r: r}
	d := decoder{r: cr}
	if m := d.u32(); d.err == nil && m != Magic {
		return nil, fmt.Errorf("magic %#x: %w", m, ErrFormat)
	}
	if v := d.u32(); d.err == nil && v != 2 && v != 3 {
		return nil, fmt.Errorf("version %d: %w", v, ErrFormat)
	}
	nt, nkv := d.u64(), d.u64()
	if d.err != nil {
		return nil, fmt.Errorf("read header: %w", d.err)
	}
	if nt > maxCount || nkv > maxCount {
		return nil, fmt.Errorf("%d tensors, %d metadata entries: %w", nt, nkv, ErrFormat)
	}
	f := &File{}
	for i := uint64(0); i < nkv; i++ {
		key := d.str()
		t := ValueType(d.u32())
		v := d.value(t)
		if d.err != nil {
			return nil, fmt.Errorf("read metadata entry %d (%q): %w", i, key, d.err)
		}
		f.KVs = append(f.KVs, KV{Key: key, Value: v})
	}
	type info struct {
		off  uint64
		size uint64
	}
	infos := make([]info, nt)
	for i := uint64(0); i < nt; i++ {
		var t Tensor
		t.Name = d.str()
		nd := d.u32()
		if nd > 8 {
			return nil, fmt.Errorf("tensor %q has %d dimensions: %w", t.Name, nd, ErrFormat)
		}
		for j := uint32(0); j < nd; j++ {
			t.Dims = append(t.Dims, d.u64())
		}
		t.Type = TensorType(d.u32())
		infos[i].off = d.u64()
		if d.err != nil {
			return nil, fmt.Errorf("read tensor info %d: %w", i, d.err)
		}
		f.Tensors = append(f.Tensors, t)
	}
	// Sizes follow from the offsets: each tensor runs to the next one.
	order := make([]int, nt)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return infos[order[a]].off < infos[order[b]].off })
	for k, i := range order {
		t := &f.Tensors[i]
		if t.Type == TensorF32 {
			infos[i].size = 4 * t.Elements()
		} else if k+1 < len(order) {
			infos[i].size = infos[order[k+1]].off - infos[i].off
		} else {
			infos[i].size = math.MaxUint64 // to the end of the file
		}
	}
	d.skip(pad(cr.n, f.alignment()) - cr.n)
	start := cr.n
	for _, i := range order {
		t := &f.Tensors[i]
		if want := start + infos[i].off; want < cr.n {
			return nil, fmt.Errorf("tensor %q overlaps the previous one: %w", t.Name, ErrFormat)
		} else {
			d.skip(want - cr.n)
		}
		switch {
		case t.Type == TensorF32:
			if infos[i].size > 4*maxCount {
				return nil, fmt.Errorf("tensor %q too large: %w", t.Name, ErrFormat)
			}
			raw := d.bytes(infos[i].size)
			t.Data = make([]float32, len(raw)/4)
			for j := range t.Data {
				t.Data[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
			}
		case infos[i].size == math.MaxUint64:
			raw, err := io.ReadAll(io.LimitReader(cr, 4*maxCount))
			if err != nil && d.err == nil {
				d.err = err
			}
			t.Raw = raw
		default:
			t.Raw = d.bytes(infos[i].size)
		}
		if d.err != nil {
			return nil, fmt.Errorf("read tensor %q: %w", t.Name, d.err)
		}
	}
	return f, nil
}

type countReader struct {
	r io.Reader
	n uint64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}

type decoder struct {
	r   io.Reader
	err error
	b   [8]byte
}

func (d *decoder) read(p []byte) {
	if d.err != nil {
		return
	}
	if _, err := io.ReadFull(d.r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		d.err = err
	}
}

func (d *decoder) skip(n uint64) {
	if d.err != nil || n == 0 {
		return
	}
	if _, err := io.CopyN(io.Discard, d.r, int64(n)); err != nil {
		d.err = io.ErrUnexpectedEOF
	}
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > 4*maxCount {
		d.err = fmt.Errorf("length %d: %w", n, ErrFormat)
		return nil
	}
	p := make([]byte, n)
	d.read(p)
	return p
}

func (d *decoder) u8() uint8   { d.read(d.b[:1]); return d.b[0] }
func (d *decoder) u16() uint16 { d.read(d.b[:2]); return binary.LittleEndian.Uint16(d.b[:2]) }
func (d *decoder) u32() uint32 { d.read(d.b[:4]); return binary.LittleEndian.Uint32(d.b[:4]) }
func (d *decoder) u64() uint64 { d.read(d.b[:8]); return binary.LittleEndian.Uint64(d.b[:8]) }

func (d *decoder) str() string {
	n := d.u64()
	if d.err == nil && n > maxCount {
		d.err = fmt.Errorf("string length %d: %w", n, ErrFormat)
	}
	return string(d.bytes(n))
}

func (d *decoder) value(t ValueType) any {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		return int8(d.u8())
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		return int16(d.u16())
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		return int32(d.u32())
	case TypeFloat32:
		return math.Float32frombits(d.u32())
	case TypeBool:
		return d.u8() != 0
	case TypeString:
		return d.str()
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		return int64(d.u64())
	case TypeFloat64:
		return math.Float64frombits(d.u64())
	case TypeArray:
		et := ValueType(d.u32())
		n := d.u64()
		if d.err == nil && n > maxCount {
			d.err = fmt.Errorf("array length %d: %w", n, ErrFormat)
		}
		if d.err != nil {
			return nil
		}
		return d.array(et, n)
	}
	if d.err == nil {
		d.err = fmt.Errorf("value type %d: %w", t, ErrFormat)
	}
	return nil
}

func (d *decoder) array(et ValueType, n uint64) any {
	switch et {
	case TypeString:
		return readArray(d, n, func() string { return d.str() })
	case TypeInt32:
		return readArray(d, n, func() int32 { return int32(d.u32()) })
	case TypeUint32:
		return readArray(d, n, func() uint32 { return d.u32() })
	case TypeFloat32:
		return readArray(d, n, func() float32 { return math.Float32frombits(d.u32()) })
	case TypeUint8:
		return readArray(d, n, func() uint8 { return d.u8() })
	case TypeInt64:
		return readArray(d, n, func() int64 { return int64(d.u64()) })
	case TypeBool:
		return readArray(d, n, func() bool { return d.u8() != 0 })
	}
	// Other element types are read generically.
	out := make([]any, 0, min(n, 1024))
	for i := uint64(0); i < n && d.err == nil; i++ {
		out = append(out, d.value(et))
	}
	return out
}

func readArray[T any](d *decoder, n uint64, next func() T) []T {
	out := make([]T, 0, min(n, 1<<16))
	for i := uint64(0); i < n && d.err == nil; i++ {
		out = append(out, next())
	}
	return out
}
