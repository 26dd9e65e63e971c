package node

import (
	"strings"
	"testing"
	"time"
)

// TestConfigTimeouts: a negative find or stall timeout is refused, with
// what is wrong and what zero means.
func TestConfigTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"find", func(c *Config) { c.FindTimeout = -time.Second }},
		{"stall", func(c *Config) { c.StallTimeout = -time.Second }},
	} {
		cfg := testConfig(t)
		tc.edit(&cfg)
		err := cfg.validate()
		if err == nil || !strings.Contains(err.Error(), tc.name+" timeout -1s") || !strings.Contains(err.Error(), "zero means the default") {
			t.Errorf("%s: validate() = %v, want an error about the negative %s timeout", tc.name, err, tc.name)
		}
	}
}
