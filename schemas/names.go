package schemas

import "strings"

// JetStream streams, subjects, durable consumers and key-value buckets. One
// place for every name, so that the ingest, processors, sink and alerter agree
// and the nats CLI finds what the README says.
const (
	// StreamEvents holds validated, pseudonymised events on
	// epi.events.<ref>.<type>.<region> (see EventRefs.Subject: the ref is a
	// keyed digest of source and event_id, never the event_id); the input
	// of every processor and the sink.
	StreamEvents  = "EPI_EVENTS"
	SubjectEvents = "epi.events"

	// StreamDeadLetter keeps what could not be accepted or processed, with the
	// reason and the original (pseudonymised) bytes, on
	// epi.deadletter.<stage>.<type>.
	StreamDeadLetter  = "EPI_DEADLETTER"
	SubjectDeadLetter = "epi.deadletter"

	// StreamIndicators carries versioned per-region, per-day indicator records
	// on epi.indicators.<region>.
	StreamIndicators  = "EPI_INDICATORS"
	SubjectIndicators = "epi.indicators"

	// StreamSignals carries versioned aberration-detector results on
	// epi.signals.<region> (the detect stage's output).
	StreamSignals  = "EPI_SIGNALS"
	SubjectSignals = "epi.signals"

	// StreamDecisions carries restriction decisions on epi.decisions.<region>.
	StreamDecisions  = "EPI_DECISIONS"
	SubjectDecisions = "epi.decisions"

	// StreamAlerts carries alert delivery records on epi.alerts.<region>, so
	// the ClickHouse sink lands them without depending on the alerter.
	StreamAlerts  = "EPI_ALERTS"
	SubjectAlerts = "epi.alerts"

	// StreamErasures is the append-only audit log of erasures (`epiwatch
	// erase`) on epi.erasures.<kind>: who erased how many events when, never
	// the national ID or the pseudonym. The processor rebuilds its state
	// when a record appears. It denies delete and purge, and has no age
	// limit.
	StreamErasures  = "EPI_ERASURES"
	SubjectErasures = "epi.erasures"
)

// Dead-letter stages: the <stage> of epi.deadletter.<stage>.<type>, the
// stage column of epiwatch.deadletter and what `epiwatch deadletter replay
// --stage` selects.
const (
	DeadLetterStageIngest  = "ingest"
	DeadLetterStageProcess = "process"
	DeadLetterStageSink    = "sink"
)

// Durable consumer names, one per concern; each has its own ack policy.
const (
	ConsumerSinkEvents     = "sink-events"
	ConsumerSinkIndicators = "sink-indicators"
	ConsumerSinkDecisions  = "sink-decisions"
	ConsumerSinkSignals    = "sink-signals"
	ConsumerSinkAlerts     = "sink-alerts"
	ConsumerProcess        = "process"
	ConsumerDecide         = "decide"
	ConsumerDetect         = "detect"
	ConsumerAlerts         = "alerts"
)

// Key-value buckets.
const (
	// BucketProcessState holds the processor's checkpoint: its state together
	// with the last stream sequence applied to it.
	BucketProcessState = "epi_process_state"
	// BucketLevels holds each region's restriction level.
	BucketLevels = "epi_levels"
	// BucketAlertClaims holds create-if-absent claims of alert deliveries.
	BucketAlertClaims = "epi_alert_claims"
	// BucketPseudonymKeys holds, per pseudonym key id, the fingerprint of the
	// key first used under it (never the key): a process with another key
	// under the same id refuses to publish, so one person never has two
	// pseudonyms in one deployment.
	BucketPseudonymKeys = "epi_pseudonym_keys"
	// BucketLeases holds the lease of each stateful component (process,
	// decide): one active replica, the others hot standbys
	// (stream.Bus.RunExclusive). Its TTL is the lease's.
	BucketLeases = "epi_leases"
	// BucketIDKey holds the id key (KeyIDKey): 32 random bytes behind every
	// event ref (EventRefs), created once by the first process that needs
	// it and never rotated.
	BucketIDKey = "epi_id_key"
)

// KeyIDKey is the key of the id key in BucketIDKey.
const KeyIDKey = "id_key"

// HeaderDataThrough is a header of every indicator message: the newest day
// with data in any region when the processor published it (YYYY-MM-DD), the
// day every region's series then ran to. It describes the publication, not
// the record (whose content is a function of its version), which is why it is
// a header. The decider starts a region's decisions no earlier than
// decide.window_days before it, so one stray old event does not open years of
// daily decisions.
const HeaderDataThrough = "Epiwatch-Data-Through"

// HeaderLeaseToken is a header of every indicator and decision message
// written under a lease (stream.Lease): the writer's fencing token. Tokens
// grow with every new holder, so an auditor can tell which replica wrote a
// record and that no two wrote at once.
const HeaderLeaseToken = "Epiwatch-Lease-Token"

// Dead-letter headers: what a dead letter on epi.deadletter.<stage>.<type>
// carries beside the original (pseudonymised) bytes, for the operator with
// the nats CLI and for `epiwatch deadletter`.
const (
	// HeaderReason says why the message was refused.
	HeaderReason = "Epiwatch-Reason"
	// HeaderStage is the stage that refused it (ingest, process, sink).
	HeaderStage = "Epiwatch-Stage"
	// HeaderSubject is the subject it was consumed from (pipeline stages).
	HeaderSubject = "Epiwatch-Subject"
	// HeaderStreamSeq is its stream sequence there (pipeline stages).
	HeaderStreamSeq = "Epiwatch-Stream-Seq"
	// HeaderEventRef is its event ref (EventRefs.Ref of its source and
	// event_id), when they could be read: never the raw event_id, which the
	// dead letter's data holds.
	HeaderEventRef = "Epiwatch-Event-Ref"
	// HeaderBatchIndex is its position in the ingest request.
	HeaderBatchIndex = "Epiwatch-Batch-Index"
)

// EventSubjectType returns the type token of an EventSubject, or "" for any
// other subject.
func EventSubjectType(subj string) string {
	parts := strings.Split(subj, ".")
	if len(parts) != 5 || parts[0]+"."+parts[1] != SubjectEvents {
		return ""
	}
	return parts[3]
}

// DeadLetterSubject returns epi.deadletter.<stage>.<type>; the type is
// "unknown" when the input was too broken to tell.
func DeadLetterSubject(stage, typ string) string {
	if typ == "" || !EventType(typ).Valid() {
		typ = "unknown"
	}
	return SubjectDeadLetter + "." + stage + "." + typ
}

// IndicatorSubject returns epi.indicators.<region>.
func IndicatorSubject(region string) string { return SubjectIndicators + "." + region }

// SignalSubject returns epi.signals.<region>.
func SignalSubject(region string) string { return SubjectSignals + "." + region }

// DecisionSubject returns epi.decisions.<region>.
func DecisionSubject(region string) string { return SubjectDecisions + "." + region }

// AlertSubject returns epi.alerts.<region>.
func AlertSubject(region string) string { return SubjectAlerts + "." + region }
