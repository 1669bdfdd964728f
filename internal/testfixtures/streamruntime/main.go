// Command streamruntime is a custom runtime (provided.al2023) that speaks the Runtime API itself,
// with no Lambda library, and streams each response in chunks of the size its event asks for,
// the way a runtime written in Rust or C++ does (Lambda-Runtime-Function-Response-Mode:
// streaming, chunked, errors in trailers). aws-lambda-go copies a handler's reader in 32 KB
// pieces, three writes each, which caps what it can stream on a small machine well below what
// the gateway moves; the bench streams through this runtime to measure the gateway's own path,
// and the tests check that a runtime announcing the streaming mode is streamed.
//
// The event is the test function's stream event: {"n":N,"size":BYTES,"ms":PAUSE,"url":true,
// "stamp":true,"fail":true}, or a function URL request carrying the same fields in its query
// string. Chunk i starts with the line "chunk i\n" ("chunk i at UNIXNANO\n" with stamp) padded
// in front with x to size bytes, so its bytes match the test function's exactly.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

type event struct {
	N     int  `json:"n"`
	Size  int  `json:"size"`
	MS    int  `json:"ms"`
	URL   bool `json:"url"`
	Stamp bool `json:"stamp"`
	Fail  bool `json:"fail"`
}

func main() {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2, DisableCompression: true}}
	for {
		resp, err := client.Get(api + "invocation/next")
		if err != nil {
			fmt.Fprintln(os.Stderr, "next:", err)
			os.Exit(1)
		}
		payload, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			fmt.Fprintln(os.Stderr, "next:", resp.Status, err)
			os.Exit(1)
		}
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		ev, err := parse(payload)
		if err != nil {
			report(client, api+"invocation/"+id+"/error", err)
			continue
		}
		body := &chunks{ev: ev, trailer: http.Header{}}
		req, _ := http.NewRequest(http.MethodPost, api+"invocation/"+id+"/response", body)
		req.ContentLength = -1 // chunked
		req.Header.Set("Lambda-Runtime-Function-Response-Mode", "streaming")
		req.Header.Set("Content-Type", "application/octet-stream")
		if ev.URL {
			req.Header.Set("Content-Type", "application/vnd.awslambda.http-integration-response")
		}
		req.Trailer = body.trailer
		body.trailer.Set("Lambda-Runtime-Function-Error-Type", "")
		body.trailer.Set("Lambda-Runtime-Function-Error-Body", "")
		resp, err = client.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "response:", err)
			os.Exit(1)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// parse reads a direct event, or a function URL request's query string.
func parse(payload []byte) (event, error) {
	var ev event
	var url struct {
		RequestContext *json.RawMessage  `json:"requestContext"`
		Query          map[string]string `json:"queryStringParameters"`
	}
	if err := json.Unmarshal(payload, &url); err != nil {
		return ev, fmt.Errorf("decoding the event: %w", err)
	}
	if url.RequestContext == nil {
		return ev, json.Unmarshal(payload, &ev)
	}
	q := url.Query
	num := func(k string) int { n, _ := strconv.Atoi(q[k]); return n }
	ev = event{N: num("n"), Size: num("size"), MS: num("ms"), URL: q["url"] == "true", Stamp: q["stamp"] == "true", Fail: q["fail"] == "true"}
	return ev, nil
}

// chunks is the response body. Its WriteTo hands each chunk to net/http's chunked writer in
// one call, so each becomes one HTTP chunk (io.Copy through Read would cut them to 32 KB).
type chunks struct {
	ev      event
	trailer http.Header
	done    bool
}

func (c *chunks) Read([]byte) (int, error) { return 0, io.EOF } // WriteTo is used instead

func (c *chunks) WriteTo(w io.Writer) (int64, error) {
	if c.done {
		return 0, nil
	}
	c.done = true
	var n int64
	write := func(b []byte) error {
		k, err := w.Write(b)
		n += int64(k)
		return err
	}
	if c.ev.URL {
		prelude := `{"statusCode":201,"headers":{"Content-Type":"text/plain","X-Streamed":"yes"},"cookies":["a=1","b=2; Path=/"]}` + "\x00\x00\x00\x00\x00\x00\x00\x00"
		if err := write([]byte(prelude)); err != nil {
			return n, err
		}
	}
	buf := bytes.Repeat([]byte("x"), max(c.ev.Size, 0))
	for i := 0; i < c.ev.N; i++ {
		if i > 0 && c.ev.MS > 0 {
			time.Sleep(time.Duration(c.ev.MS) * time.Millisecond)
		}
		label := fmt.Sprintf("chunk %d\n", i)
		if c.ev.Stamp {
			label = fmt.Sprintf("chunk %d at %d\n", i, time.Now().UnixNano())
		}
		chunk := []byte(label)
		if pad := c.ev.Size - len(label); pad > 0 {
			buf[pad-1] = '\n'
			copy(buf[pad:], label)
			chunk = buf
		}
		if err := write(chunk); err != nil {
			return n, err
		}
	}
	if c.ev.Fail {
		errJSON, _ := json.Marshal(map[string]string{"errorType": "errorString", "errorMessage": "failed in mid-stream"})
		c.trailer.Set("Lambda-Runtime-Function-Error-Type", "errorString")
		c.trailer.Set("Lambda-Runtime-Function-Error-Body", base64.StdEncoding.EncodeToString(errJSON))
	}
	return n, nil
}

// report posts an invocation error.
func report(client *http.Client, url string, err error) {
	body, _ := json.Marshal(map[string]string{"errorType": "InvalidEvent", "errorMessage": err.Error()})
	resp, perr := client.Post(url, "application/json", strings.NewReader(string(body)))
	if perr != nil {
		fmt.Fprintln(os.Stderr, "error report:", perr)
		os.Exit(1)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
