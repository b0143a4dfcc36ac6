package main

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/flywheel-go/flywheel/internal/client"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// apiRequestBytes caps one POST /api/logs body the API ingester sends (the
// server accepts 32 MB).
const apiRequestBytes = 16 << 20

// apiIngester stores records through a flywheel server's POST /api/logs, so
// that `flywheel load --server URL` needs no access to its database.
type apiIngester struct {
	c *client.Client
}

// wireRecord is a record in the blueprint's log format.
type wireRecord struct {
	WorkloadID string          `json:"workload_id"`
	ClientID   string          `json:"client_id"`
	Timestamp  string          `json:"timestamp"`
	Request    json.RawMessage `json:"request"`
	Response   json.RawMessage `json:"response"`
}

// InsertLogs implements flywheel.LogIngester. Records the server rejects are
// returned as *flywheel.RecordErrors, indexed in recs; the others are kept.
func (a *apiIngester) InsertLogs(ctx context.Context, recs []flywheel.LogRecord) (inserted, duplicates int, err error) {
	var (
		body     bytes.Buffer
		index    []int // the index in recs of each line of body
		rejected []flywheel.RecordError
	)
	send := func() error {
		if body.Len() == 0 {
			return nil
		}
		resp, err := a.c.IngestLogs(ctx, bytes.NewReader(body.Bytes()))
		if err != nil {
			return err
		}
		inserted += resp.Inserted
		duplicates += resp.Duplicates
		for _, e := range resp.Errors {
			i := -1
			if e.Line >= 1 && e.Line <= len(index) {
				i = index[e.Line-1]
			}
			rejected = append(rejected, flywheel.RecordError{Index: i, Field: e.Field, Reason: e.Reason})
		}
		body.Reset()
		index = index[:0]
		return nil
	}
	for i, r := range recs {
		line, err := json.Marshal(wireRecord{WorkloadID: r.WorkloadID, ClientID: r.ClientID,
			Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano), Request: r.Request, Response: r.Response})
		if err != nil {
			rejected = append(rejected, flywheel.RecordError{Index: i, Reason: err.Error()})
			continue
		}
		if body.Len() > 0 && body.Len()+len(line)+1 > apiRequestBytes {
			if err := send(); err != nil {
				return inserted, duplicates, err
			}
		}
		body.Write(line)
		body.WriteByte('\n')
		index = append(index, i)
	}
	if err := send(); err != nil {
		return inserted, duplicates, err
	}
	if len(rejected) > 0 {
		return inserted, duplicates, &flywheel.RecordErrors{Items: rejected}
	}
	return inserted, duplicates, nil
}
