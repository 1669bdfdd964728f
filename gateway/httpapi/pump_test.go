package httpapi

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"
)

// slowReader returns its data in pieces of random size, the way a runtime's chunks arrive.
type slowReader struct {
	data []byte
	rng  *rand.Rand
	err  error
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, s.err
	}
	n := min(len(p), len(s.data), 1+s.rng.Intn(100<<10))
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

func TestPumpCopiesEverythingInOrder(t *testing.T) {
	want := make([]byte, 5*pumpBufferBytes+12345)
	rng := rand.New(rand.NewSource(1))
	rng.Read(want)
	var got bytes.Buffer
	sends := 0
	err := pump(&slowReader{data: want, rng: rng, err: io.EOF}, func(p []byte) error {
		sends++
		got.Write(p)
		return nil
	}, func() { t.Error("stop called on a normal end") })
	if !errors.Is(err, io.EOF) {
		t.Fatalf("pump returned %v, want io.EOF", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("copied %d bytes that differ from the %d sent", got.Len(), len(want))
	}
	if sends == 0 {
		t.Fatal("nothing was sent")
	}
}

func TestPumpReportsTheReadErrorAfterTheData(t *testing.T) {
	broken := errors.New("stream broke")
	var got bytes.Buffer
	err := pump(io.MultiReader(bytes.NewReader([]byte("before")), iotest.ErrReader(broken)), func(p []byte) error {
		got.Write(p)
		return nil
	}, func() {})
	if !errors.Is(err, broken) || got.String() != "before" {
		t.Fatalf("pump returned %v after %q, want the read error after \"before\"", err, got.String())
	}
}

func TestPumpStopsTheReaderWhenSendFails(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		for {
			if _, err := pw.Write([]byte("more")); err != nil {
				return
			}
		}
	}()
	gone := errors.New("client went away")
	stopped := false
	err := pump(pr, func([]byte) error { return gone }, func() {
		stopped = true
		_ = pr.CloseWithError(io.ErrClosedPipe) // what closing the stream does to a pending read
	})
	if !errors.Is(err, gone) || !stopped {
		t.Fatalf("pump returned %v (stop called: %v), want the send error and a stop", err, stopped)
	}
}
