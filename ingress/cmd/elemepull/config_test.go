package main

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfig(t *testing.T) {
	c, err := loadConfig(env(map[string]string{
		"ELEME_SECRETS":  "62933118=current,62933118=previous,111=other",
		"ELEME_APP_KEYS": "62933118=key-a",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Apps) != 1 || c.Apps[0].AppID != "62933118" || c.Apps[0].AppKey != "key-a" || c.Apps[0].Secret != "current" {
		t.Errorf("apps %+v, want 62933118 with its first secret", c.Apps)
	}
	if c.Interval != 30*time.Second || c.PageSize != 50 || c.APIURL != "https://open-api.shop.ele.me" || c.OpsAddr != ":8084" {
		t.Errorf("defaults %+v", c)
	}
	c, _ = loadConfig(env(map[string]string{"ELEME_SECRETS": "1=s", "ELEME_APP_KEYS": "1=k", "ELEME_API_URL": "sandbox"}))
	if c.APIURL != "https://open-api-sandbox.shop.ele.me" {
		t.Errorf("sandbox URL %s", c.APIURL)
	}
}

// Every problem is listed at once, and no secret appears in the message.
func TestLoadConfigErrors(t *testing.T) {
	_, err := loadConfig(env(map[string]string{
		"ELEME_SECRETS":        "62933118=s3cr3t-value,broken",
		"ELEME_APP_KEYS":       "62933118=k,999=k2,nokey",
		"ELEME_PULL_INTERVAL":  "10ms",
		"ELEME_PULL_PAGE_SIZE": "500",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"ELEME_SECRETS", "ELEME_APP_KEYS", "no secret for app 999", "ELEME_PULL_INTERVAL", "ELEME_PULL_PAGE_SIZE"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "s3cr3t") {
		t.Errorf("error shows a secret:\n%s", msg)
	}
	if _, err := loadConfig(env(map[string]string{})); err == nil || !strings.Contains(err.Error(), "no app to poll") {
		t.Errorf("no apps: %v", err)
	}
}
