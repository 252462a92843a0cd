package stream

import (
	"errors"
	"testing"
	"time"
)

// TestLeaseCheck: a holder may write only while its last confirmed renewal
// was sent less than two thirds of the TTL ago and nobody took the key.
func TestLeaseCheck(t *testing.T) {
	t.Parallel()
	ttl := 6 * time.Second
	for _, tc := range []struct {
		name string
		l    *Lease
		want error
	}{
		{"unfenced", nil, nil},
		{"just confirmed", &Lease{ttl: ttl, confirmed: time.Now()}, nil},
		{"confirmed half a TTL ago", &Lease{ttl: ttl, confirmed: time.Now().Add(-ttl / 2)}, nil},
		{"unconfirmed for 5 of 6 s", &Lease{ttl: ttl, confirmed: time.Now().Add(-5 * time.Second)}, ErrLeaseUnconfirmed},
		{"lost", &Lease{ttl: ttl, confirmed: time.Now(), lost: true}, ErrLeaseLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.l.Check()
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Check() = %v, want %v", err, tc.want)
			}
		})
	}
	// A renewal confirmed later makes a stale lease writable again; an
	// older confirmation does not move it back.
	l := &Lease{ttl: ttl, confirmed: time.Now().Add(-5 * time.Second)}
	l.confirm(time.Now())
	l.confirm(time.Now().Add(-time.Minute))
	if err := l.Check(); err != nil {
		t.Fatalf("after a renewal: %v", err)
	}
}
