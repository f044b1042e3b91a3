// Package deploy holds what runs and watches Quire outside its binary: the
// Prometheus alerting rules (prometheus/alerts.yml), their promtool unit tests
// (prometheus/alerts_test.yml), a sample scrape configuration
// (prometheus/prometheus.yml) and the runbook the alerts link to (RUNBOOK.md).
// An alert is one alerting rule name with a warning and a critical rule.
//
// The package has no Go code to import; its tests check the files: promtool
// accepts the rules and the configuration and passes the rule tests, every
// alert links to a section of the runbook, is fired by a rule test at each of
// its severities, and reads only metrics that package metrics defines.
package deploy
