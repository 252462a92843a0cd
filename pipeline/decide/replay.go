package decide

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// StartAt makes a data-mode decider begin region's decisions on data day
// from, as if the rule set had been adopted that day: it stores, in the
// levels bucket kv (schemas.BucketLevels of a replay's own JetStream, never
// the live one), a level record without a level and with LastDay = from-1.
// Days before from are then never decided, and the first decision starts
// the region at decide.levels.initial ("no previous state"), its dwell clock
// counting from that day. Indicators of earlier days still reach the
// decider's window (the week-before positivity reads day D-7).
//
// Idempotency key: the region code. The record is created only if the
// region has none (KV Create), so calling StartAt again, or after the
// decider has decided the region, changes nothing.
func StartAt(ctx context.Context, kv *stream.KV, region string, from schemas.Date) error {
	if from.IsZero() {
		return errors.New("decide: StartAt needs a day")
	}
	b, err := json.Marshal(LevelRecord{LastDay: from.AddDays(-1)})
	if err != nil {
		return fmt.Errorf("encode start record of %s: %w", region, err)
	}
	if _, err := kv.Create(ctx, region, b); err != nil && !errors.Is(err, stream.ErrKeyExists) {
		return fmt.Errorf("store start record of %s in %s: %w", region, schemas.BucketLevels, err)
	}
	return nil
}
