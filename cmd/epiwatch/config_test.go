package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigPrintMasksSecrets(t *testing.T) {
	t.Setenv("EPIWATCH_CLICKHOUSE_PASSWORD", "hunter2-very-secret")
	t.Setenv("EPIWATCH_PSEUDONYM_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	t.Setenv("EPIWATCH_NATS_TOKEN", "nats-token-secret")
	var out, errb bytes.Buffer
	code := realMain(t.Context(), []string{"config", "print"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	for _, secret := range []string{"hunter2", "00112233", "nats-token-secret"} {
		if strings.Contains(s, secret) {
			t.Fatalf("config print leaks %q:\n%s", secret, s)
		}
	}
	if !strings.Contains(s, "password: '***'") && !strings.Contains(s, `password: "***"`) {
		t.Fatalf("password not shown masked:\n%s", s)
	}
	if !strings.Contains(s, "addr: 127.0.0.1:9000") {
		t.Fatalf("non-secret values missing:\n%s", s)
	}
}

// TestUsageErrorsExit2: every usage error exits 2 and points at --help,
// whether cobra or the command finds it.
func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"rules", "check", "--r", "abc", "--occupancy", "85"},
		{"rules", "check", "--r", "1.2"},
		{"import"},
		{"run", "--no-such-flag"},
		{"no-such-command"},
		{"config", "print", "--config", filepath.Join(t.TempDir(), "missing.yaml")},
	} {
		var out, errb bytes.Buffer
		if code := realMain(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("epiwatch %s exited %d, want 2: %s", strings.Join(args, " "), code, errb.String())
		}
		if !strings.HasPrefix(errb.String(), "epiwatch: ") || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("epiwatch %s: want one line saying what is wrong, got %q", strings.Join(args, " "), errb.String())
		}
	}
}
