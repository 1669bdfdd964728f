package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/lambdagw/gateway/internal/lambda"
)

// TestListLayerVersionsFollowsPages: every page is read, in order, each asked for with the
// marker the one before gave.
func TestListLayerVersionsFollowsPages(t *testing.T) {
	var markers []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/2018-10-31/layers/deps/versions" {
			http.NotFound(w, r)
			return
		}
		marker := r.URL.Query().Get("Marker")
		markers = append(markers, marker)
		page := lambda.ListLayerVersionsOutput{LayerVersions: []lambda.LayerVersionsListItem{{Version: 3}, {Version: 2}}}
		if marker == "" {
			next := "m2"
			page.NextMarker = &next
		} else {
			page.LayerVersions = []lambda.LayerVersionsListItem{{Version: 1}}
		}
		_ = json.NewEncoder(w).Encode(page)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ListLayerVersions(context.Background(), "deps")
	if err != nil {
		t.Fatal(err)
	}
	var versions []int64
	for _, v := range got {
		versions = append(versions, v.Version)
	}
	if !reflect.DeepEqual(versions, []int64{3, 2, 1}) || !reflect.DeepEqual(markers, []string{"", "m2"}) {
		t.Errorf("versions %v with markers %q", versions, markers)
	}
}
