package schemas

// JetStream streams, subjects, durable consumers and key-value buckets. One
// place for every name, so that the ingest, processors, sink and alerter agree
// and the nats CLI finds what the README says.
const (
	// StreamEvents holds validated, pseudonymised events on
	// epi.events.<type>.<region>; the input of every processor and the sink.
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

	// StreamDecisions carries restriction decisions on epi.decisions.<region>.
	StreamDecisions  = "EPI_DECISIONS"
	SubjectDecisions = "epi.decisions"

	// StreamAlerts carries alert delivery records on epi.alerts.<region>, so
	// the ClickHouse sink lands them without depending on the alerter.
	StreamAlerts  = "EPI_ALERTS"
	SubjectAlerts = "epi.alerts"
)

// Durable consumer names, one per concern; each has its own ack policy.
const (
	ConsumerSinkEvents     = "sink-events"
	ConsumerSinkIndicators = "sink-indicators"
	ConsumerSinkDecisions  = "sink-decisions"
	ConsumerSinkAlerts     = "sink-alerts"
	ConsumerProcess        = "process"
	ConsumerDecide         = "decide"
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
	// BucketEventDigests maps event_id to a digest of the accepted content, so
	// an event_id reused with different content is rejected, not dropped silently.
	BucketEventDigests = "epi_event_digests"
)

// EventSubject returns epi.events.<type>.<region>.
func EventSubject(t EventType, region string) string {
	return SubjectEvents + "." + string(t) + "." + region
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

// DecisionSubject returns epi.decisions.<region>.
func DecisionSubject(region string) string { return SubjectDecisions + "." + region }

// AlertSubject returns epi.alerts.<region>.
func AlertSubject(region string) string { return SubjectAlerts + "." + region }
