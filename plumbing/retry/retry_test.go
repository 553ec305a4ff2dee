package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWaitsGrowJitteredAndCapped(t *testing.T) {
	b := Policy{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}.New()
	nominal := 10 * time.Millisecond
	for i := 0; i < 20; i++ {
		d := b.Next()
		if d < nominal/2 || d > nominal*3/2 {
			t.Fatalf("wait %d = %s, want within ±50%% of %s", i, d, nominal)
		}
		nominal = min(nominal*2, 80*time.Millisecond)
	}
	b.Reset()
	if d := b.Next(); d > 15*time.Millisecond {
		t.Fatalf("after Reset the first wait is %s, want about 10ms", d)
	}
}

func TestDoStopsOnSuccessPermanentOrContext(t *testing.T) {
	p := Policy{Min: time.Millisecond, Max: 2 * time.Millisecond}
	calls := 0
	err := Do(context.Background(), p, func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("transient")
		}
		return nil
	}, nil)
	if err != nil || calls != 3 {
		t.Fatalf("Do = %v after %d calls, want nil after 3", err, calls)
	}

	boom := errors.New("boom")
	calls = 0
	err = Do(context.Background(), p, func(context.Context) error { calls++; return Permanent(boom) }, nil)
	if err != boom || calls != 1 {
		t.Fatalf("Do = %v after %d calls, want boom after 1", err, calls)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	retries := 0
	err = Do(ctx, p, func(context.Context) error { return errors.New("down") }, func(error, time.Duration) { retries++ })
	if !errors.Is(err, context.DeadlineExceeded) || retries == 0 {
		t.Fatalf("Do = %v with %d retries, want the deadline after some retries", err, retries)
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v, want Canceled", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("Sleep did not end with its context")
	}
}
