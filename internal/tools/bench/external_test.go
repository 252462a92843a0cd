package bench

import (
	"testing"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestOurs: every stream and bucket epiwatch creates is one that bench
// --external refuses to find and deletes at the end; nothing else is.
func TestOurs(t *testing.T) {
	b := &bench{cfg: Config{Streams: stream.DefaultConfig()}}
	for _, c := range b.cfg.Streams.StreamConfigs() {
		if !b.ours(c.Name) {
			t.Errorf("stream %s is not ours", c.Name)
		}
	}
	for _, bucket := range []string{schemas.BucketProcessState, schemas.BucketLevels, schemas.BucketAlertClaims, schemas.BucketPseudonymKeys, schemas.BucketLeases} {
		if !b.ours("KV_" + bucket) {
			t.Errorf("bucket %s (stream KV_%s) is not ours", bucket, bucket)
		}
	}
	for _, name := range []string{rawStream, atomicStream, "ORDERS", "KV_config", "EPI_EVENTS_BACKUP"} {
		if b.ours(name) {
			t.Errorf("stream %s is ours", name)
		}
	}
}
