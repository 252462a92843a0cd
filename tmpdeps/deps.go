package tmpdeps

import (
	_ "github.com/ClickHouse/clickhouse-go/v2"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go/jetstream"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/testutil/promlint"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "gonum.org/v1/gonum/mathext"
	_ "gonum.org/v1/gonum/stat/distuv"
	_ "gopkg.in/yaml.v3"
	_ "github.com/chdb-io/chdb-go/chdb-purego"
	_ "github.com/grafana/grafana-foundation-sdk/go/dashboard"
)
