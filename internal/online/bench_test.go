package online_test

import (
	"context"
	"testing"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/online"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// BenchmarkRecord is the cost the gateway pays per sample: queueing (here
// against a full queue, so every call is a counted drop).
func BenchmarkRecord(b *testing.B) {
	r := online.NewRecorder(online.RecorderOptions{Store: storetest.Open(b, store.SQLite), QueueSize: 1})
	s := sample(promotion("p1"), same, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		r.Record(context.Background(), s)
	}
}

// BenchmarkScoreAndStore scores and stores samples through the recorder's
// worker on SQLite (one op is one sample).
func BenchmarkScoreAndStore(b *testing.B) {
	st := storetest.Open(b, store.SQLite)
	p := promotion("p1")
	samples := make([]flywheel.OnlineSample, 0, b.N)
	at := time.Now()
	for i := range b.N {
		c := same
		if i%3 == 0 {
			c = wrongArgs
		}
		samples = append(samples, sample(p, c, at))
	}
	r := online.NewRecorder(online.RecorderOptions{Store: st, QueueSize: b.N})
	b.ResetTimer()
	for _, s := range samples {
		r.Record(context.Background(), s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = r.Run(ctx)
}

// BenchmarkWindowStats computes a full window (500 samples) from the
// store, as the monitor does per active promotion at each check.
func BenchmarkWindowStats(b *testing.B) {
	st := storetest.Open(b, store.SQLite)
	p := promotion("p1")
	now := time.Now()
	r := online.NewRecorder(online.RecorderOptions{Store: st, QueueSize: 1000})
	for i := range 1000 {
		c := same
		if i%4 == 0 {
			c = wrongArgs
		}
		r.Record(context.Background(), sample(p, c, now.Add(-time.Duration(i)*time.Second)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = r.Run(ctx)
	reader := online.NewReader(online.ReaderOptions{Store: st, Now: func() time.Time { return now }})
	b.ResetTimer()
	for b.Loop() {
		if _, err := reader.Stats(context.Background(), p, now); err != nil {
			b.Fatal(err)
		}
	}
}
