package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// TestTriggerRequests: each trigger method calls its /v1 route (names escaped), sends the
// trigger as JSON and reads the answer; an error answer comes back as a *lambda.Error.
func TestTriggerRequests(t *testing.T) {
	type call struct{ method, path, body string }
	var calls []call
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls = append(calls, call{r.Method, r.URL.EscapedPath(), string(b)})
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "PUT":
			var in structs.Trigger
			_ = json.Unmarshal(b, &in)
			in.UUID = "u-1"
			_ = json.NewEncoder(w).Encode(&in)
		case r.Method == "DELETE" && r.URL.Path == "/v1/functions/fn/triggers/gone":
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"Type":"User","message":"Trigger not found: gone of function fn"}`))
		case r.Method == "DELETE":
			w.WriteHeader(204)
		case r.URL.Path == "/v1/triggers":
			_, _ = w.Write([]byte(`{"Triggers":[{"function":"a","name":"x"},{"function":"b","name":"y"}]}`))
		default:
			_, _ = w.Write([]byte(`{"Triggers":[{"uuid":"u-1","function":"fn","name":"orders","plugin":"queue","source":"orders"}]}`))
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	put, err := c.PutTrigger(ctx, &structs.Trigger{Function: "fn", Name: "orders", Plugin: "queue", Source: "orders", BatchSize: 5, Enabled: true})
	if err != nil || put.UUID != "u-1" || put.BatchSize != 5 || !put.Enabled {
		t.Fatalf("put: %+v, %v", put, err)
	}
	var sent structs.Trigger
	if err := json.Unmarshal([]byte(calls[0].body), &sent); err != nil || calls[0].path != "/v1/functions/fn/triggers/orders" || sent.Source != "orders" {
		t.Fatalf("put sent %+v", calls[0])
	}
	list, err := c.ListTriggers(ctx, "fn")
	if err != nil || len(list) != 1 || list[0].Name != "orders" || calls[1].path != "/v1/functions/fn/triggers" {
		t.Fatalf("list: %+v, %v (%+v)", list, err, calls[1])
	}
	all, err := c.ListTriggers(ctx, "")
	if err != nil || len(all) != 2 || calls[2].path != "/v1/triggers" {
		t.Fatalf("list all: %+v, %v (%+v)", all, err, calls[2])
	}
	if err := c.DeleteTrigger(ctx, "fn", "orders"); err != nil || calls[3] != (call{"DELETE", "/v1/functions/fn/triggers/orders", ""}) {
		t.Fatalf("delete: %v (%+v)", err, calls[3])
	}
	var le *lambda.Error
	if err := c.DeleteTrigger(ctx, "fn", "gone"); !errors.As(err, &le) || le.Type != "ResourceNotFoundException" || le.Status != 404 {
		t.Fatalf("delete of a missing trigger: %T %v", err, err)
	}
	if _, err := c.ListTriggers(ctx, "a b/c"); err != nil || calls[5].path != "/v1/functions/a%20b%2Fc/triggers" {
		t.Fatalf("an escaped name: %v (%+v)", err, calls[5])
	}
}
