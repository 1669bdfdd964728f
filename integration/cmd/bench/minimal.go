package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// minimalGateway is the least a Lambda-compatible gateway can do for a warm invocation, with
// nothing else: one process that takes a call over HTTP, hands the payload to an unmodified
// aws-lambda-go runtime as the answer to its parked GET /next, reads the runtime's POST
// /response and answers the caller, all with net/http. No sandbox, routing, admission, logs,
// freezing or accounting. It runs runtimes copies of bootstrap as plain processes (GOMAXPROCS=1,
// as in a 128 MB environment), each polling for the next call. The bench measures it beside the
// gateway and the floor: the cost of the Lambda protocol's four hops on this machine.
func minimalGateway(listen, bootstrap string, runtimes int) {
	type result struct {
		status int
		body   []byte
	}
	type call struct {
		id      string
		payload []byte
		done    chan result
	}
	calls := make(chan *call)
	var seq atomic.Int64
	var mu sync.Mutex
	pending := map[string]*call{}

	api := http.NewServeMux()
	api.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		var c *call
		select {
		case c = <-calls:
		case <-r.Context().Done():
			return
		}
		mu.Lock()
		pending[c.id] = c
		mu.Unlock()
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", c.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(10*time.Second).UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:minimal")
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(c.payload)
	})
	answer := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			mu.Lock()
			c := pending[r.PathValue("id")]
			delete(pending, r.PathValue("id"))
			mu.Unlock()
			if c == nil || err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusAccepted)
			c.done <- result{status: status, body: body}
		}
	}
	api.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", answer(http.StatusOK))
	api.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", answer(http.StatusInternalServerError))
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "minimal:", err)
		os.Exit(1)
	}
	go func() { _ = http.Serve(apiLn, api) }()
	for i := 0; i < runtimes; i++ {
		cmd := exec.Command(bootstrap)
		cmd.Env = append(os.Environ(), "AWS_LAMBDA_RUNTIME_API="+apiLn.Addr().String(), "GOMAXPROCS=1",
			"AWS_LAMBDA_FUNCTION_NAME=minimal", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST")
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "minimal:", err)
			os.Exit(1)
		}
	}
	invoke := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		payload, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c := &call{id: "minimal-" + strconv.FormatInt(seq.Add(1), 10), payload: payload, done: make(chan result, 1)}
		calls <- c
		res := <-c.done
		if res.status != http.StatusOK {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(res.body)
	})
	_ = http.ListenAndServe(listen, invoke)
}
