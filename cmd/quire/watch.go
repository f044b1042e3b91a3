package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/quirehq/quire/httpapi"
)

// Exit codes of `submit --wait` and `watch`: 0 only for a completed job, one
// code for each other end, so that a script can tell them apart.
const (
	ExitFailed      = 1   // the command itself failed (bad flags, network, 4xx/5xx)
	ExitPartial     = 3   // the job ended partially_completed
	ExitJobFailed   = 4   // the job ended failed
	ExitCancelled   = 5   // the job ended cancelled
	ExitInterrupted = 130 // Ctrl-C: the job goes on running
)

const exitCodesHelp = `  0   completed
  3   partially_completed (some chunks failed; their pages were refunded)
  4   failed
  5   cancelled
  1   the command failed (network, bad input, ...)
  130 interrupted (Ctrl-C): the job keeps running`

// exitError ends the process with its code after printing its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// ExitCode is the process exit code for the error Run returned.
func ExitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitFailed
}

var terminal = map[string]bool{"completed": true, "partially_completed": true, "failed": true, "cancelled": true}

// endCode maps a job's terminal status to the command's exit.
func endCode(j httpapi.Job) error {
	var code int
	switch j.Status {
	case "completed":
		return nil
	case "partially_completed":
		code = ExitPartial
	case "failed":
		code = ExitJobFailed
	case "cancelled":
		code = ExitCancelled
	default:
		return fmt.Errorf("job %s is %s, not ended", j.ID, j.Status)
	}
	msg := fmt.Sprintf("job %s ended %s", j.ID, j.Status)
	if j.Error != "" {
		msg += ": " + j.Error
	}
	return &exitError{code: code, msg: msg}
}

func newWatchCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Show a job's progress until it ends, then print it as JSON",
		Long: `Show a job's progress on stderr until it ends (a bar on a terminal, a line
per change otherwise), then print the job as JSON on stdout. Exit codes:
` + exitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, cf, "QUIRE_API_KEY")
			if err != nil {
				return err
			}
			var j httpapi.Job
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/jobs/"+args[0], nil, "", &j); err != nil {
				return err
			}
			return watchToEnd(cmd, c, j)
		},
	}
	addClientFlags(cmd.Flags(), cf)
	return cmd
}

// watchToEnd follows j until it ends, prints it as JSON on stdout and
// returns the exit that says how it ended.
func watchToEnd(cmd *cobra.Command, c *client, j httpapi.Job) error {
	final, err := followJob(cmd.Context(), c, j, newProgress(cmd.ErrOrStderr(), j.Chunks.Total))
	if err != nil {
		if cmd.Context().Err() != nil {
			return &exitError{code: ExitInterrupted, msg: fmt.Sprintf(
				"interrupted; job %s keeps running. Follow it with `quire watch %s`, cancel it with `quire cancel %s`",
				j.ID, j.ID, j.ID)}
		}
		return err
	}
	if err := printJSON(cmd.OutOrStdout(), final); err != nil {
		return err
	}
	return endCode(final)
}

// progress shows a job's chunks as they end.
type progress interface {
	update(j httpapi.Job)
	done()
}

// newProgress is an animated bar when w is a terminal, else a line per
// change (no carriage returns in logs and pipes).
func newProgress(w io.Writer, total int) progress {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &barProgress{w: w, bar: progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("chunks"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
		)}
	}
	return &lineProgress{w: w}
}

type barProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (p *barProgress) update(j httpapi.Job) {
	_ = p.bar.Set(j.Chunks.Done + j.Chunks.Failed)
	p.bar.Describe(fmt.Sprintf("%-10s", j.Status))
}

func (p *barProgress) done() {
	_ = p.bar.Finish()
	fmt.Fprintln(p.w) // the bar leaves the cursor on its line
}

type lineProgress struct {
	w    io.Writer
	last string
}

func (p *lineProgress) update(j httpapi.Job) {
	line := fmt.Sprintf("job %s: %s, %d/%d chunks done, %d failed, %d running", j.ID, j.Status, j.Chunks.Done, j.Chunks.Total, j.Chunks.Failed, j.Chunks.Running)
	if line != p.last {
		fmt.Fprintln(p.w, line)
		p.last = line
	}
}

func (p *lineProgress) done() {}

// followJob polls a job until it ends.
func followJob(ctx context.Context, c *client, j httpapi.Job, p progress) (httpapi.Job, error) {
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := c.do(ctx, http.MethodGet, "/v1/jobs/"+j.ID, nil, "", &j); err != nil {
			return j, err
		}
		p.update(j)
		if terminal[j.Status] {
			p.done()
			return j, nil
		}
		select {
		case <-ctx.Done():
			p.done()
			return j, ctx.Err()
		case <-tick.C:
		}
	}
}

func newJobsCmd() *cobra.Command {
	cf := &clientFlags{}
	var status, cursor string
	var limit int
	var all bool
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List your jobs, newest first",
		Long: `List your jobs, newest first, one per line: id, status, pages, progress,
created. --status keeps one status; --all follows the cursor to the last page.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd, cf, "QUIRE_API_KEY")
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for {
				q := fmt.Sprintf("/v1/jobs?limit=%d", limit)
				if status != "" {
					q += "&status=" + status
				}
				if cursor != "" {
					q += "&cursor=" + cursor
				}
				var page struct {
					Jobs       []httpapi.Job `json:"jobs"`
					NextCursor string        `json:"next_cursor"`
				}
				if err := c.do(cmd.Context(), http.MethodGet, q, nil, "", &page); err != nil {
					return err
				}
				for _, j := range page.Jobs {
					fmt.Fprintf(w, "%s  %-19s  %5d pages  %3.0f%%  %s  %s\n", j.ID, j.Status, j.Pages, 100*j.Progress,
						j.CreatedAt.Local().Format(time.DateTime), j.FileName)
				}
				cursor = page.NextCursor
				if cursor == "" {
					return nil
				}
				if !all {
					fmt.Fprintf(cmd.ErrOrStderr(), "more: quire jobs --cursor %s (or --all)\n", cursor)
					return nil
				}
			}
		},
	}
	addClientFlags(cmd.Flags(), cf)
	cmd.Flags().StringVar(&status, "status", "", "only jobs in this status (queued, running, completed, partially_completed, failed, cancelling, cancelled)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "start at this page (next_cursor of the previous one)")
	cmd.Flags().IntVar(&limit, "limit", 20, "jobs per page (1-200)")
	cmd.Flags().BoolVar(&all, "all", false, "follow the cursor to the last page")
	return cmd
}
