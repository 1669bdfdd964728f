// Package natsstream is the convention for a named stream of records on NATS JetStream, with the
// shape of an Amazon Kinesis data stream: records partitioned into shards by a partition key,
// ordered within a shard, kept by age rather than consumption. It is shared by whoever publishes
// to streams and by the stream trigger plugin, which feeds functions with Kinesis events and
// checkpoints its progress per mapping and shard in a key-value bucket.
//
// A stream NAME is the JetStream stream STREAM_<NAME> (limits retention, file storage, records
// kept DefaultRetention) with one subject per shard, stream.<NAME>.<i> for shard i from 0. The
// number of shards is fixed when the stream is created and recorded in the stream's metadata
// (ShardsMetadataKey); a record goes to shard ShardFor(its partition key), which carries the key
// in the PartitionKeyHeader header. A record's Kinesis sequence number is its JetStream stream
// sequence: increasing within a shard (and across the stream). NAME is 1 to 128 letters, digits,
// '-' and '_' (a Kinesis stream name, less '.', which NATS subjects reserve).
//
// Checkpoints live in the JetStream key-value bucket CheckpointBucket: per event source mapping
// and shard, the last stream sequence whose record is done. A consumer that restarts, here or on
// another node sharing the NATS server, continues after it.
package natsstream

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names and limits of the convention.
const (
	StreamPrefix  = "STREAM_"
	SubjectPrefix = "stream."
	// DefaultShards is the shard count of a stream created without one.
	DefaultShards = 4
	// MaxShards bounds a stream's shard count.
	MaxShards = 256
	// DefaultRetention is how long a stream keeps its records: Kinesis's default, 24 hours.
	DefaultRetention = 24 * time.Hour
	// ShardsMetadataKey is the stream metadata key holding its shard count.
	ShardsMetadataKey = "lambdagw.shards"
	// PartitionKeyHeader is the header holding a record's partition key.
	PartitionKeyHeader = "Lambdagw-Partition-Key"
	// MaxPartitionKeyLength is the longest partition key, in characters (as Kinesis).
	MaxPartitionKeyLength = 256
	// CheckpointBucket is the key-value bucket of the mappings' checkpoints.
	CheckpointBucket = "STREAM_CHECKPOINTS"
)

// Errors of the convention.
var (
	ErrInvalidName         = errors.New("invalid stream name")
	ErrInvalidShards       = errors.New("invalid shard count")
	ErrInvalidPartitionKey = errors.New("invalid partition key")
	// ErrNotAStream means a JetStream stream of the name exists but does not follow the
	// convention (its shards cannot be told).
	ErrNotAStream = errors.New("not a sharded stream")
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// Validate says whether name is a valid stream name.
func Validate(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w %q: use 1 to 128 letters, digits, '-' and '_'", ErrInvalidName, name)
	}
	return nil
}

// ValidatePartitionKey says whether key is a valid partition key: 1 to 256 characters of UTF-8,
// with no line breaks (it travels in a header).
func ValidatePartitionKey(key string) error {
	n := utf8.RuneCountInString(key)
	if n == 0 || n > MaxPartitionKeyLength || !utf8.ValidString(key) || strings.ContainsAny(key, "\r\n") {
		return fmt.Errorf("%w %q: use 1 to %d characters of UTF-8 without line breaks", ErrInvalidPartitionKey,
			key, MaxPartitionKeyLength)
	}
	return nil
}

// StreamName is the JetStream stream of stream name.
func StreamName(name string) string { return StreamPrefix + name }

// Subject is the subject of shard i of stream name.
func Subject(name string, shard int) string { return SubjectPrefix + name + "." + strconv.Itoa(shard) }

// ShardID is the Kinesis shard id of shard i: shardId-000000000000 for 0.
func ShardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

// ShardFor is the shard of partitionKey in a stream of shards shards. As Kinesis does, it takes
// the MD5 of the key as a number and the shards as equal ranges of that number (of its first 64
// bits here), so a key always lands on the same shard of a stream.
func ShardFor(partitionKey string, shards int) int {
	if shards <= 1 {
		return 0
	}
	sum := md5.Sum([]byte(partitionKey))
	hi, _ := bits.Mul64(binary.BigEndian.Uint64(sum[:8]), uint64(shards))
	return int(hi)
}

func checkShards(shards int) error {
	if shards < 1 || shards > MaxShards {
		return fmt.Errorf("%w %d: a stream has 1 to %d shards", ErrInvalidShards, shards, MaxShards)
	}
	return nil
}

// StreamConfig is the configuration of stream name with shards shards (DefaultShards when 0).
func StreamConfig(name string, shards int) (jetstream.StreamConfig, error) {
	if err := Validate(name); err != nil {
		return jetstream.StreamConfig{}, err
	}
	if shards == 0 {
		shards = DefaultShards
	}
	if err := checkShards(shards); err != nil {
		return jetstream.StreamConfig{}, err
	}
	subjects := make([]string, shards)
	for i := range subjects {
		subjects[i] = Subject(name, i)
	}
	return jetstream.StreamConfig{
		Name:        StreamName(name),
		Description: fmt.Sprintf("stream %s (%d shards)", name, shards),
		Subjects:    subjects,
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      DefaultRetention,
		Discard:     jetstream.DiscardOld,
		Metadata:    map[string]string{ShardsMetadataKey: strconv.Itoa(shards)},
	}, nil
}

// ShardsOf reads the shard count of stream name back from its configuration: the metadata, or
// else its shard subjects.
func ShardsOf(name string, cfg jetstream.StreamConfig) (int, error) {
	if v, ok := cfg.Metadata[ShardsMetadataKey]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || checkShards(n) != nil {
			return 0, fmt.Errorf("%w: stream %s has %s %q", ErrNotAStream, name, ShardsMetadataKey, v)
		}
		return n, nil
	}
	prefix := SubjectPrefix + name + "."
	n := 0
	for _, s := range cfg.Subjects {
		i, err := strconv.Atoi(strings.TrimPrefix(s, prefix))
		if !strings.HasPrefix(s, prefix) || err != nil || i < 0 || i >= MaxShards {
			continue
		}
		n = max(n, i+1)
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: stream %s has no shard subjects", ErrNotAStream, name)
	}
	return n, nil
}

// Shards returns the shard count of the existing stream name (an error wrapping
// jetstream.ErrStreamNotFound if there is none).
func Shards(ctx context.Context, js jetstream.JetStream, name string) (int, error) {
	if err := Validate(name); err != nil {
		return 0, err
	}
	s, err := js.Stream(ctx, StreamName(name))
	if err != nil {
		return 0, fmt.Errorf("looking up stream %s: %w", name, err)
	}
	return ShardsOf(name, s.CachedInfo().Config)
}

// Ensure makes sure stream name exists, creating it with shards shards (DefaultShards when 0)
// if it does not, and returns its shard count: an existing stream keeps its own.
func Ensure(ctx context.Context, js jetstream.JetStream, name string, shards int) (int, error) {
	cfg, err := StreamConfig(name, shards)
	if err != nil {
		return 0, err
	}
	n, err := Shards(ctx, js, name)
	if err == nil || !errors.Is(err, jetstream.ErrStreamNotFound) {
		return n, err
	}
	s, err := js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// Someone else created it meanwhile, maybe with another shard count.
		return Shards(ctx, js, name)
	}
	if err != nil {
		return 0, fmt.Errorf("creating stream %s: %w", name, err)
	}
	return ShardsOf(name, s.CachedInfo().Config)
}

// shardCounts caches the shard count of the streams Publish has published to, per client and
// stream name: a stream's count never changes while it exists (a stream deleted meanwhile is
// looked up again). Publishers should keep their jetstream.JetStream: the cache holds each.
var shardCounts sync.Map // shardCountKey -> int

type shardCountKey struct {
	js   jetstream.JetStream
	name string
}

// Publish puts a record with partitionKey on stream name (created with DefaultShards if it does
// not exist), on the shard of its key, waits for JetStream's acknowledgement that it is stored
// and returns its sequence number.
func Publish(ctx context.Context, js jetstream.JetStream, name, partitionKey string, data []byte) (uint64, error) {
	if err := Validate(name); err != nil {
		return 0, err
	}
	if err := ValidatePartitionKey(partitionKey); err != nil {
		return 0, err
	}
	key := shardCountKey{js, name}
	for attempt := 0; ; attempt++ {
		shards, cached := 0, false
		if v, ok := shardCounts.Load(key); ok {
			shards, cached = v.(int), true
		} else {
			n, err := Ensure(ctx, js, name, 0)
			if err != nil {
				return 0, err
			}
			shards = n
			shardCounts.Store(key, n)
		}
		msg := &nats.Msg{Subject: Subject(name, ShardFor(partitionKey, shards)), Data: data, Header: nats.Header{}}
		msg.Header.Set(PartitionKeyHeader, partitionKey)
		opts := []jetstream.PublishOpt{jetstream.WithExpectStream(StreamName(name))}
		if cached {
			// The stream may be gone: fail fast and look it up again.
			opts = append(opts, jetstream.WithRetryAttempts(0))
		}
		ack, err := js.PublishMsg(ctx, msg, opts...)
		if err == nil {
			return ack.Sequence, nil
		}
		if cached && attempt == 0 && (errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)) {
			shardCounts.Delete(key)
			continue
		}
		return 0, fmt.Errorf("publishing to stream %s: %w", name, err)
	}
}

// PartitionKey is the partition key of a record read from a stream.
func PartitionKey(m jetstream.Msg) string { return m.Headers().Get(PartitionKeyHeader) }

// Checkpoints returns the checkpoint bucket, creating it if it does not exist.
func Checkpoints(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, CheckpointBucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("looking up the checkpoint bucket: %w", err)
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      CheckpointBucket,
		Description: "stream event source mappings' checkpoints: the last sequence done per mapping and shard",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, CheckpointBucket)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the checkpoint bucket: %w", err)
	}
	return kv, nil
}

// checkpointPrefix is the key prefix of mappingUUID's checkpoints (with any character a key may
// not hold replaced by '_').
func checkpointPrefix(mappingUUID string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') {
			return r
		}
		return '_'
	}, mappingUUID) + "."
}

// CheckpointKey is the key of the checkpoint of mappingUUID on shard.
func CheckpointKey(mappingUUID string, shard int) string {
	return checkpointPrefix(mappingUUID) + ShardID(shard)
}

// LoadCheckpoint returns the last sequence done by mappingUUID on shard, and false if it has
// none.
func LoadCheckpoint(ctx context.Context, kv jetstream.KeyValue, mappingUUID string, shard int) (uint64, bool, error) {
	e, err := kv.Get(ctx, CheckpointKey(mappingUUID, shard))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("loading the checkpoint of mapping %s on %s: %w", mappingUUID, ShardID(shard), err)
	}
	seq, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("the checkpoint of mapping %s on %s is %q, no sequence", mappingUUID, ShardID(shard), e.Value())
	}
	return seq, true, nil
}

// SaveCheckpoint records seq as the last sequence done by mappingUUID on shard.
func SaveCheckpoint(ctx context.Context, kv jetstream.KeyValue, mappingUUID string, shard int, seq uint64) error {
	if _, err := kv.Put(ctx, CheckpointKey(mappingUUID, shard), []byte(strconv.FormatUint(seq, 10))); err != nil {
		return fmt.Errorf("saving the checkpoint of mapping %s on %s: %w", mappingUUID, ShardID(shard), err)
	}
	return nil
}

// DeleteCheckpoints forgets every checkpoint of mappingUUID (for a mapping deleted for good).
func DeleteCheckpoints(ctx context.Context, kv jetstream.KeyValue, mappingUUID string) error {
	kl, err := kv.ListKeysFiltered(ctx, checkpointPrefix(mappingUUID)+">")
	if err != nil {
		return fmt.Errorf("listing the checkpoints of mapping %s: %w", mappingUUID, err)
	}
	var keys []string
	for k := range kl.Keys() {
		keys = append(keys, k)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, k := range keys {
		if err := kv.Purge(ctx, k); err != nil {
			return fmt.Errorf("deleting checkpoint %s: %w", k, err)
		}
	}
	return nil
}
