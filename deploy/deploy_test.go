package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/quirehq/quire/metrics"
)

const (
	alertsFile     = "prometheus/alerts.yml"
	alertTestsFile = "prometheus/alerts_test.yml"
	configFile     = "prometheus/prometheus.yml"
	runbookFile    = "RUNBOOK.md"
	runbookURL     = "https://github.com/quirehq/quire/blob/main/deploy/RUNBOOK.md#"
)

// promtool returns the path of promtool. Without it the test is skipped on a
// developer's machine and fails in CI (CI set), where .ci/run installs it
// (Debian package prometheus).
func promtool(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("promtool")
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("promtool not found (%v): CI must have it; .ci/run installs Debian's prometheus package", err)
	}
	tb.Skipf("promtool not found (%v): the alert rules are not checked; install it with `apt-get install prometheus`", err)
	return ""
}

// TestPromtool checks the rules and the sample configuration, and runs the
// rule unit tests.
func TestPromtool(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", alertsFile},
		{"check", "config", configFile},
		{"test", "rules", alertTestsFile},
	} {
		t.Run(strings.Join(args[:2], "_"), func(t *testing.T) {
			out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func readRules(tb testing.TB) []rule {
	tb.Helper()
	var file struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(tb, alertsFile, &file)
	var rules []rule
	for _, g := range file.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		tb.Fatalf("%s: no rules", alertsFile)
	}
	return rules
}

func readYAML(tb testing.TB, path string, v any) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
}

// TestRulesShape checks what promtool does not: each rule has a severity,
// a summary, a description and a runbook URL whose anchor is a section of
// RUNBOOK.md.
func TestRulesShape(t *testing.T) {
	runbook, err := os.ReadFile(runbookFile)
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (\S+)$`).FindAllSubmatch(runbook, -1) {
		sections[strings.ToLower(string(m[1]))] = true
	}
	for _, r := range readRules(t) {
		name := fmt.Sprintf("%s/%s", r.Alert, r.Labels["severity"])
		if r.Alert == "" {
			t.Errorf("a rule without alert name: %+v", r)
			continue
		}
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", name, s)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", name, a)
			}
		}
		anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookURL)
		if !ok || anchor != strings.ToLower(r.Alert) {
			t.Errorf("%s: runbook_url %q, want %s%s", name, r.Annotations["runbook_url"], runbookURL, strings.ToLower(r.Alert))
		}
		if !sections[anchor] {
			t.Errorf("%s: %s has no section %q", name, runbookFile, "## "+r.Alert)
		}
	}
}

// TestRuleTestsFireEveryAlert checks that alerts_test.yml fires each alert at
// each severity it has, and also shows some alerts silent.
func TestRuleTestsFireEveryAlert(t *testing.T) {
	var file struct {
		Tests []struct {
			AlertRuleTest []struct {
				AlertName string `yaml:"alertname"`
				ExpAlerts []struct {
					ExpLabels map[string]string `yaml:"exp_labels"`
				} `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, alertTestsFile, &file)
	fired := map[string]bool{}
	silent := map[string]bool{}
	for _, tc := range file.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) == 0 {
				silent[a.AlertName] = true
			}
			for _, e := range a.ExpAlerts {
				fired[a.AlertName+"/"+e.ExpLabels["severity"]] = true
			}
		}
	}
	alerts := map[string]bool{}
	for _, r := range readRules(t) {
		alerts[r.Alert] = true
		if key := r.Alert + "/" + r.Labels["severity"]; !fired[key] {
			t.Errorf("%s: no rule test fires it", key)
		}
	}
	for a := range alerts {
		if !silent[a] {
			t.Errorf("%s: no rule test shows it silent (below its threshold or before its for)", a)
		}
	}
}

// TestRulesReadDefinedMetrics checks that every metric the rules read is one
// that package metrics exposes, so a renamed metric cannot leave an alert
// that never fires.
func TestRulesReadDefinedMetrics(t *testing.T) {
	metrics.MemberDown("deploy-test-peer") // quire_cluster_member_up exists once a peer is known
	defer metrics.MemberLeft("deploy-test-peer")
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	exposed := map[string]bool{"up": true} // written by Prometheus itself
	for name, f := range fams {
		exposed[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				exposed[name+suffix] = true
			}
		}
	}
	metricName := regexp.MustCompile(`\b(quire_[a-z0-9_]+|process_[a-z0-9_]+|up)\b`)
	var read []string
	for _, r := range readRules(t) {
		for _, name := range metricName.FindAllString(r.Expr, -1) {
			if !slices.Contains(read, name) {
				read = append(read, name)
			}
		}
	}
	for _, name := range read {
		if !exposed[name] {
			t.Errorf("the rules read %s, which /metrics does not expose", name)
		}
	}
	if len(read) < 7 {
		t.Errorf("the rules read only %v", read)
	}
}
