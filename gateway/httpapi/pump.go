package httpapi

import (
	"io"
	"sync"
)

// pumpBufferBytes is the ring of one streamed response: all the gateway holds of a stream at
// any time, however large the stream is.
const pumpBufferBytes = 256 << 10

var pumpBuffers = sync.Pool{New: func() any { b := make([]byte, pumpBufferBytes); return &b }}

// pump copies src to send as src produces it. A reader goroutine fills a ring buffer while send
// writes whatever has accumulated since its last call: a client that keeps up gets every piece
// at once (one hand-off after the function's write), and one that does not gets fewer, larger
// writes instead of a write and a flush per piece the runtime sent. Reads and writes are
// system calls that cost tens of microseconds here, so this decides the throughput.
//
// pump returns src's error (io.EOF at a normal end) once everything before it was sent, or
// send's first error. When send fails, stop is called to unblock the pending read (closing
// the stream), and pump waits for the reader to finish before it returns.
func pump(src io.Reader, send func([]byte) error, stop func()) error {
	bufp := pumpBuffers.Get().(*[]byte)
	buf := *bufp
	size := int64(len(buf))
	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu)
		in, out int64 // bytes read into the ring, bytes sent from it
		readErr error
		stopped bool
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			mu.Lock()
			for in-out == size && !stopped {
				cond.Wait()
			}
			if stopped {
				mu.Unlock()
				return
			}
			start := in % size
			n := min(size-start, size-(in-out))
			mu.Unlock()
			k, err := src.Read(buf[start : start+n])
			mu.Lock()
			in += int64(k)
			if err != nil {
				readErr = err
			}
			cond.Broadcast()
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		<-done
		pumpBuffers.Put(bufp)
	}()
	for {
		mu.Lock()
		for in == out && readErr == nil {
			cond.Wait()
		}
		if in == out {
			err := readErr
			mu.Unlock()
			return err
		}
		start := out % size
		n := min(in-out, size-start)
		mu.Unlock()
		if err := send(buf[start : start+n]); err != nil {
			mu.Lock()
			stopped = true
			cond.Broadcast()
			mu.Unlock()
			stop()
			return err
		}
		mu.Lock()
		out += n
		cond.Broadcast()
		mu.Unlock()
	}
}
