package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestAccessLogOptions(t *testing.T) {
	var out, errw bytes.Buffer
	for _, tc := range []struct {
		dest, format string
		sample       float64
		wantErr      string
		wantLogger   bool
	}{
		{"stdout", "json", 1, "", true},
		{"stderr", "text", 0.5, "", true},
		{"off", "json", 1, "", false},
		{"file", "json", 1, "want stdout, stderr or off", false},
		{"stdout", "xml", 1, "want json or text", false},
		{"stdout", "json", 0, "in (0, 1]", false},
	} {
		al, err := accessLogOptions(tc.dest, tc.format, tc.sample, false, &out, &errw)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s/%s/%v: err %v, want %q", tc.dest, tc.format, tc.sample, err, tc.wantErr)
			}
			continue
		}
		if err != nil || (al.Logger != nil) != tc.wantLogger {
			t.Errorf("%s/%s: logger %v, err %v", tc.dest, tc.format, al.Logger != nil, err)
		}
	}
	al, _ := accessLogOptions("stdout", "json", 1, false, &out, &errw)
	al.Logger.InfoContext(context.Background(), "request", "status", 200)
	if !strings.Contains(out.String(), `"status":200`) {
		t.Errorf("stdout got %q", out.String())
	}
}
