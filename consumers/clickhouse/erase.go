package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/epiwatch/epiwatch/schemas"
	ddl "github.com/epiwatch/epiwatch/schemas/clickhouse"
)

// Erasure in ClickHouse: the rows of the events store (events_v2_store)
// holding erased events are selected by their stream sequence (the erasure
// record lists them), never by pseudonym or event_id — the statement lands in system.query_log and the
// server's logs, which must not learn who was erased.
//
// ALTER TABLE … DELETE (a mutation) is used on every version: it rewrites
// the parts without the rows, so the bytes go once the old parts are
// removed (old_parts_lifetime, 8 minutes by default). Current ClickHouse's
// lightweight DELETE would only mask the rows until a merge that may never
// come, which is not erasure. On a cluster the mutation runs ON CLUSTER on
// the local tables (replicas replicate it).

// ErasedIDs returns the erasure_ids the erasures table holds: erasures whose
// ClickHouse part is done.
func ErasedIDs(ctx context.Context, conn driver.Conn, db string) (map[string]bool, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT erasure_id FROM %s.erasures", quoteIdent(db)))
	if err != nil {
		return nil, fmt.Errorf("read %s.erasures: %w", db, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read %s.erasures: %w", db, err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// seqChunk bounds the sequences named in one statement.
const seqChunk = 5000

// Erase deletes the rows of rec's events (rec.Seqs) from the events store,
// waits until they are gone, and records rec in the erasures table with the
// rows deleted. cluster is "" on a single server. streamSeq is the record's
// sequence in the erasure log. Safe to repeat: a second run deletes nothing
// and the record replaces itself (ReplacingMergeTree by erasure_id).
func Erase(ctx context.Context, conn driver.Conn, db, cluster string, rec *schemas.Erasure, streamSeq uint64, wait time.Duration) (uint64, error) {
	qdb := quoteIdent(db)
	var deleted uint64
	for off := 0; off < len(rec.Seqs); off += seqChunk {
		count, del := EraseSQL(db, cluster, rec.Seqs[off:min(off+seqChunk, len(rec.Seqs))])
		var n uint64
		if err := conn.QueryRow(ctx, count).Scan(&n); err != nil {
			return deleted, fmt.Errorf("erasure %s: count the rows to delete: %w", rec.ID, err)
		}
		if n == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err := conn.Exec(cctx, del)
		cancel()
		if err != nil {
			return deleted, fmt.Errorf("erasure %s: delete %d rows from %s.%s: %w", rec.ID, n, db, eventsTable.name, err)
		}
		// Mutations run in the background; the rows are gone when no
		// query finds them (on a cluster, through the Distributed table).
		if err := waitGone(ctx, conn, count, wait); err != nil {
			return deleted, fmt.Errorf("erasure %s: %w", rec.ID, err)
		}
		deleted += n
	}
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.erasures (erasure_id, kind, erased_by, reason, erased_at, events, dead_letters, rows_deleted, stream_seq)", qdb))
	if err == nil {
		if err = b.Append(rec.ID, rec.Kind, rec.By, rec.Reason, rec.At.UTC(), uint32(rec.Events), uint32(rec.DeadLetters), deleted, streamSeq); err == nil {
			err = b.Send()
		} else {
			_ = b.Abort()
		}
	}
	if err != nil {
		return deleted, fmt.Errorf("erasure %s: record it in %s.erasures: %w", rec.ID, db, err)
	}
	return deleted, nil
}

// EraseSQL returns the count of the rows of the events store at seqs (through
// the Distributed table on a cluster) and the mutation deleting them (on
// the local tables, ON CLUSTER, on a cluster).
func EraseSQL(db, cluster string, seqs []uint64) (count, del string) {
	qdb := quoteIdent(db)
	where := "seq IN (" + seqList(seqs) + ")"
	table, on := qdb+"."+eventsTable.name, ""
	if cluster != "" {
		table, on = qdb+"."+eventsTable.name+ddl.LocalSuffix, " ON CLUSTER "+quoteIdent(cluster)
	}
	return fmt.Sprintf("SELECT count() FROM %s.%s WHERE %s", qdb, eventsTable.name, where),
		fmt.Sprintf("ALTER TABLE %s%s DELETE WHERE %s", table, on, where)
}

func seqList(seqs []uint64) string {
	var b strings.Builder
	for i, s := range seqs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(s, 10))
	}
	return b.String()
}

// waitGone polls query (a count) until it is 0 or wait passes.
func waitGone(ctx context.Context, conn driver.Conn, query string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	delay := 50 * time.Millisecond
	for {
		var n uint64
		if err := conn.QueryRow(ctx, query).Scan(&n); err != nil {
			return fmt.Errorf("wait for the delete: %w", err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the delete (an ALTER TABLE … DELETE mutation) has not finished within " + wait.String() + "; see system.mutations, then run `epiwatch erase --finish` again")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}
