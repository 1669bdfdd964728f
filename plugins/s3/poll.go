package main

// Poll mode, for stores without notifications: list the bucket (ListObjectsV2 with the prefix)
// every poll interval and deliver each new or changed object as an ObjectCreated:Put record,
// and each object gone since as ObjectRemoved:Delete (when the mapping's events want them).
//
// The cursor, <data_dir>/poll/<uuid>.json, holds the key, ETag and modification time of every
// object delivered (so its size grows with the bucket); an object whose ETag or modification time
// changed is delivered again. It is written (aside, fsynced, renamed over) at most once a
// second while delivering, at the end of each poll and when the mapping stops, so a crash
// redelivers at most the last second's objects and a stop none. A cursor made for another
// bucket, prefix or suffix is started afresh. StartingPosition LATEST makes the first poll of a
// fresh cursor take what is there without delivering it, AT_TIMESTAMP what was modified before
// the timestamp; otherwise (TRIM_HORIZON, the default) everything there is delivered.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

// cursorEvery is how often, at most, the cursor is written while a poll delivers.
const cursorEvery = time.Second

// cursor is what a poll mapping has delivered.
type cursor struct {
	Bucket  string            `json:"bucket"`
	Prefix  string            `json:"prefix"`
	Suffix  string            `json:"suffix"`
	Started bool              `json:"started"` // a poll has completed
	Objects map[string]string `json:"objects"` // key -> the version delivered (see listed.version)
}

// listed is an object as the listing gives it.
type listed struct {
	key      string
	version  string // the ETag and modification time (and size when the store gives no ETag)
	etag     string
	size     int64
	modified time.Time
	owner    string
}

// pollRunner runs a poll mapping.
type pollRunner struct {
	trigger.Base
	d      *deliverer
	client *s3.Client
	path   string
	region string

	cur   *cursor
	dirty bool
	saved time.Time
}

func newPollRunner(d *deliverer, client *s3.Client, path, region string) *pollRunner {
	return &pollRunner{d: d, client: client, path: path, region: region}
}

// start runs the mapping under parent until stop; it has nothing to set up first.
func (r *pollRunner) start(parent context.Context) {
	trigger.Start(&r.Base, r.d.m, parent, parent, trigger.Setup[struct{}]{
		Logger: r.d.logger,
		Run:    func(ctx context.Context, _ struct{}, _ bool) { r.run(ctx) },
	})
}

// stop stops the mapping and waits until it has stopped.
func (r *pollRunner) stop() {
	r.Stop()
	r.Wait()
}

func (r *pollRunner) run(ctx context.Context) {
	r.cur = r.loadCursor()
	defer r.save(true)
	for {
		if err := r.poll(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.d.logger.Warn("polling the bucket failed", "error", err)
			r.SetErr(err)
		} else {
			r.SetErr(nil)
		}
		r.save(true)
		if !trigger.Sleep(ctx, r.d.st.pollInterval) {
			return
		}
	}
}

func (r *pollRunner) loadCursor() *cursor {
	m, f := r.d.m, r.d.st.filter
	fresh := &cursor{Bucket: m.Source, Prefix: f.prefix, Suffix: f.suffix, Objects: map[string]string{}}
	b, err := os.ReadFile(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fresh
	}
	var c cursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		r.d.logger.Error("cannot read the cursor; starting afresh (objects will be delivered again)", "path", r.path, "error", err)
		return fresh
	}
	if c.Bucket != fresh.Bucket || c.Prefix != fresh.Prefix || c.Suffix != fresh.Suffix {
		r.d.logger.Info("the cursor is of another bucket or filter; starting afresh", "was_bucket", c.Bucket,
			"was_prefix", c.Prefix, "was_suffix", c.Suffix)
		return fresh
	}
	if c.Objects == nil {
		c.Objects = map[string]string{}
	}
	return &c
}

// save writes the cursor if it changed: now, or when the last write is cursorEvery old.
func (r *pollRunner) save(now bool) {
	if !r.dirty || (!now && time.Since(r.saved) < cursorEvery) {
		return
	}
	b, err := json.Marshal(r.cur)
	if err == nil {
		err = writeFileAtomic(r.path, b)
	}
	if err != nil {
		r.d.logger.Error("cannot write the cursor", "path", r.path, "error", err)
		r.SetErr(fmt.Errorf("writing the cursor: %w", err))
		return
	}
	r.dirty, r.saved = false, time.Now()
}

// poll lists the bucket once and delivers what changed.
func (r *pollRunner) poll(ctx context.Context) error {
	objs, err := r.list(ctx)
	if err != nil {
		return err
	}
	f := r.d.st.filter
	if !r.cur.Started {
		// Where a fresh cursor starts: LATEST skips what is there, AT_TIMESTAMP what is older.
		skipped := 0
		for _, o := range objs {
			switch m := r.d.m; {
			case m.StartingPosition == sdk.Latest,
				m.StartingPosition == sdk.AtTimestamp && o.modified.Before(m.StartingPositionTimestamp):
				r.cur.Objects[o.key] = o.version
				skipped++
			}
		}
		if skipped > 0 {
			r.dirty = true
			r.d.logger.Info("not delivering the objects before the starting position", "objects", skipped,
				"starting_position", r.d.m.StartingPosition)
		}
	}

	var changed []listed
	seen := make(map[string]bool, len(objs))
	for _, o := range objs {
		seen[o.key] = true
		if v, ok := r.cur.Objects[o.key]; !ok || v != o.version {
			changed = append(changed, o)
		}
	}
	sort.Slice(changed, func(i, j int) bool {
		if !changed[i].modified.Equal(changed[j].modified) {
			return changed[i].modified.Before(changed[j].modified)
		}
		return changed[i].key < changed[j].key
	})
	var gone []string
	for k := range r.cur.Objects {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	sort.Strings(gone)

	wantPut, wantDelete := f.matchesEvent(eventPut), f.matchesEvent(eventDelete)
	size := r.d.st.batchSize
	for start := 0; start < len(changed); start += size {
		batch := changed[start:min(start+size, len(changed))]
		if wantPut {
			items := make([]*item, len(batch))
			for i, o := range batch {
				n := notification{Bucket: r.d.m.Source, Key: o.key, EventName: eventPut, Time: o.modified,
					Principal: o.owner, Owner: o.owner, Size: &o.size, ETag: o.etag, Sequencer: pollSequencer(o.key, o.modified)}
				if items[i], err = r.item(n); err != nil {
					return err
				}
			}
			if err := r.d.deliver(ctx, items); err != nil {
				return err
			}
		}
		for _, o := range batch {
			r.cur.Objects[o.key] = o.version
		}
		r.dirty = true
		r.save(false)
	}
	for start := 0; start < len(gone); start += size {
		batch := gone[start:min(start+size, len(gone))]
		if wantDelete {
			now := r.d.now()
			items := make([]*item, len(batch))
			for i, k := range batch {
				n := notification{Bucket: r.d.m.Source, Key: k, EventName: eventDelete, Time: now, Sequencer: pollSequencer(k, now)}
				if items[i], err = r.item(n); err != nil {
					return err
				}
			}
			if err := r.d.deliver(ctx, items); err != nil {
				return err
			}
		}
		for _, k := range batch {
			delete(r.cur.Objects, k)
		}
		r.dirty = true
		r.save(false)
	}
	if !r.cur.Started {
		r.cur.Started, r.dirty = true, true
	}
	if len(changed) > 0 || len(gone) > 0 {
		r.d.logger.Debug("polled the bucket", "objects", len(objs), "changed", len(changed), "gone", len(gone))
	}
	return nil
}

func (r *pollRunner) item(n notification) (*item, error) {
	name := r.d.m.Name
	if name == "" {
		name = r.d.m.UUID
	}
	b, err := json.Marshal(n.record(name, r.region))
	if err != nil {
		return nil, err
	}
	return &item{id: n.Sequencer, record: b, received: r.d.now()}, nil
}

// list lists the objects of the bucket under the prefix that pass the suffix filter.
func (r *pollRunner) list(ctx context.Context) ([]listed, error) {
	f := r.d.st.filter
	in := &s3.ListObjectsV2Input{Bucket: aws.String(r.d.m.Source), FetchOwner: aws.Bool(true)}
	if f.prefix != "" {
		in.Prefix = aws.String(f.prefix)
	}
	var out []listed
	p := s3.NewListObjectsV2Paginator(r.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing bucket %s: %w", r.d.m.Source, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if !f.matchesKey(key) {
				continue
			}
			l := listed{key: key, etag: unquoteETag(aws.ToString(o.ETag)), size: aws.ToInt64(o.Size),
				modified: aws.ToTime(o.LastModified)}
			if o.Owner != nil {
				l.owner = aws.ToString(o.Owner.ID)
			}
			// An overwrite shows as a new ETag or, with the same content, a new time.
			l.version = fmt.Sprintf("%s@%d", l.etag, l.modified.UnixNano())
			if l.etag == "" {
				l.version += fmt.Sprintf("/%d", l.size)
			}
			out = append(out, l)
		}
	}
	return out, nil
}
