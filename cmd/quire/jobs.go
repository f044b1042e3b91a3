package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/quirehq/quire/httpapi"
)

var terminal = map[string]bool{"completed": true, "partially_completed": true, "failed": true, "cancelled": true}

func newSubmitCmd() *cobra.Command {
	cf := &clientFlags{}
	var wait bool
	var extractor, prompt, schemaFile string
	var chunkPages int
	cmd := &cobra.Command{
		Use:   "submit FILE",
		Short: "Upload a PDF as a job; with --wait, show its progress until it ends",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, cf, "QUIRE_API_KEY")
			if err != nil {
				return err
			}
			fields := map[string]string{"extractor": extractor, "prompt": prompt}
			if chunkPages > 0 {
				fields["chunk_pages"] = strconv.Itoa(chunkPages)
			}
			if schemaFile != "" {
				b, err := os.ReadFile(schemaFile)
				if err != nil {
					return err
				}
				fields["schema"] = string(b)
			}
			var j httpapi.Job
			if err := c.upload(cmd.Context(), args[0], fields, &j); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "job %s: %d pages in %d chunks, %d credits reserved\n", j.ID, j.Pages, j.Chunks.Total, j.Credits.Reserved)
			if !wait {
				fmt.Fprintln(cmd.OutOrStdout(), j.ID)
				return nil
			}
			final, err := waitJob(cmd, c, j)
			if err != nil {
				return err
			}
			if err := printJSON(cmd.OutOrStdout(), final); err != nil {
				return err
			}
			if final.Status != "completed" {
				return fmt.Errorf("job %s ended %s: %s", final.ID, final.Status, final.Error)
			}
			return nil
		},
	}
	addClientFlags(cmd.Flags(), cf)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the job to end, showing its progress on stderr")
	cmd.Flags().StringVar(&extractor, "extractor", "", "text (default) or gemini")
	cmd.Flags().StringVar(&prompt, "prompt", "", "what to extract (gemini)")
	cmd.Flags().StringVar(&schemaFile, "schema-file", "", "a JSON schema the output must match (gemini)")
	cmd.Flags().IntVar(&chunkPages, "chunk-pages", 0, "pages per chunk (default: the node's)")
	return cmd
}

// waitJob polls a job until it ends, with a progress bar of its chunks.
func waitJob(cmd *cobra.Command, c *client, j httpapi.Job) (httpapi.Job, error) {
	bar := progressbar.NewOptions(j.Chunks.Total,
		progressbar.OptionSetWriter(cmd.ErrOrStderr()),
		progressbar.OptionSetDescription("chunks"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(cmd.ErrOrStderr()) }),
	)
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := c.do(cmd.Context(), http.MethodGet, "/v1/jobs/"+j.ID, nil, "", &j); err != nil {
			return j, err
		}
		_ = bar.Set(j.Chunks.Done + j.Chunks.Failed)
		bar.Describe(fmt.Sprintf("%-10s", j.Status))
		if terminal[j.Status] {
			_ = bar.Finish()
			return j, nil
		}
		select {
		case <-cmd.Context().Done():
			return j, cmd.Context().Err()
		case <-tick.C:
		}
	}
}

func newStatusCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use: "status ID", Short: "Show a job's status, progress and credits", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, cf, "QUIRE_API_KEY")
			if err != nil {
				return err
			}
			var j httpapi.Job
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/jobs/"+args[0], nil, "", &j); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), j)
		},
	}
	addClientFlags(cmd.Flags(), cf)
	return cmd
}

func newResultCmd() *cobra.Command {
	cf := &clientFlags{}
	var asText bool
	cmd := &cobra.Command{
		Use: "result ID", Short: "Print a job's merged result (JSON, or page text with --text)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, cf, "QUIRE_API_KEY")
			if err != nil {
				return err
			}
			var r httpapi.JobResult
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/jobs/"+args[0]+"/result", nil, "", &r); err != nil {
				return err
			}
			if !asText {
				return printJSON(cmd.OutOrStdout(), r)
			}
			w := cmd.OutOrStdout()
			for _, ch := range r.Chunks {
				if ch.Status != "done" {
					fmt.Fprintf(w, "[pages %d-%d: %s %s]\n", ch.FirstPage, ch.LastPage, ch.Status, ch.Error)
					continue
				}
				var out struct {
					Pages []struct {
						Page int    `json:"page"`
						Text string `json:"text"`
					} `json:"pages"`
				}
				if err := json.Unmarshal(ch.Output, &out); err != nil || len(out.Pages) == 0 {
					fmt.Fprintf(w, "%s\n", ch.Output)
					continue
				}
				for _, p := range out.Pages {
					fmt.Fprintf(w, "%s\f", p.Text)
				}
			}
			return nil
		},
	}
	addClientFlags(cmd.Flags(), cf)
	cmd.Flags().BoolVar(&asText, "text", false, "print the pages' text, pages separated by form feeds (like pdftotext)")
	return cmd
}

func newCancelCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use: "cancel ID", Short: "Cancel a job; its unprocessed pages are refunded", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, cf, "QUIRE_API_KEY")
			if err != nil {
				return err
			}
			var j httpapi.Job
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/jobs/"+args[0]+"/cancel", nil, "", &j); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), j)
		},
	}
	addClientFlags(cmd.Flags(), cf)
	return cmd
}

func newCreditsCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use: "credits", Short: "Show your balance and recent ledger entries", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd, cf, "QUIRE_API_KEY")
			if err != nil {
				return err
			}
			var cr httpapi.Credits
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/credits", nil, "", &cr); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), cr)
		},
	}
	addClientFlags(cmd.Flags(), cf)
	return cmd
}
