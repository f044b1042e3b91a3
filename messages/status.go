package messages

import "strings"

// Terminal reports whether a job in this status can change no more.
func (s JobStatus) Terminal() bool {
	switch s {
	case JobStatus_JOB_STATUS_COMPLETED, JobStatus_JOB_STATUS_PARTIALLY_COMPLETED,
		JobStatus_JOB_STATUS_FAILED, JobStatus_JOB_STATUS_CANCELLED:
		return true
	}
	return false
}

// Label is the status as the REST API spells it: "queued", "partially_completed", ...
func (s JobStatus) Label() string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "JOB_STATUS_"))
}

// ParseJobStatus reads a status as the REST API spells it.
func ParseJobStatus(label string) (JobStatus, bool) {
	v, ok := JobStatus_value["JOB_STATUS_"+strings.ToUpper(label)]
	if !ok || v == 0 {
		return JobStatus_JOB_STATUS_UNSPECIFIED, false
	}
	return JobStatus(v), true
}
