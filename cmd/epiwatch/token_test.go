package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/pipeline/ingest"
)

func TestTokenCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := realMain(context.Background(), []string{"token", "hash", "test"}, &out, &errb); code != 0 {
		t.Fatalf("token hash exited %d: %s", code, errb.String())
	}
	// sha256("test"), from `printf test | sha256sum`.
	if got := strings.TrimSpace(out.String()); got != "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" {
		t.Errorf("token hash test = %s", got)
	}
	out.Reset()
	if code := realMain(context.Background(), []string{"token", "new", "lis-almaty"}, &out, &errb); code != 0 {
		t.Fatalf("token new exited %d: %s", code, errb.String())
	}
	m := regexp.MustCompile(`once; it is not stored\): (\S+)\n(?s:.*)sha256: ([0-9a-f]{64})`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("token new printed:\n%s", out.String())
	}
	if ingest.HashToken(m[1]) != m[2] {
		t.Errorf("printed hash is not the token's")
	}
}
