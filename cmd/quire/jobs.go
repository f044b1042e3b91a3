package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/quirehq/quire/httpapi"
)

func newSubmitCmd() *cobra.Command {
	cf := &clientFlags{}
	var wait bool
	var extractor, prompt, schemaFile, model, idemKey string
	var chunkPages int
	cmd := &cobra.Command{
		Use:   "submit FILE",
		Short: "Upload a PDF as a job; with --wait, show its progress until it ends",
		Long: `Upload a PDF as a job and print its id. With --wait, show its progress on
stderr until it ends, then print the job as JSON on stdout; the exit code says
how it ended:
` + exitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, cf, "QUIRE_API_KEY")
			if err != nil {
				return err
			}
			fields := map[string]string{"extractor": extractor, "prompt": prompt, "model": model}
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
			if err := c.upload(cmd.Context(), args[0], fields, idemKey, &j); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "job %s: %d pages in %d chunks, %d credits reserved\n", j.ID, j.Pages, j.Chunks.Total, j.Credits.Reserved)
			if !wait {
				fmt.Fprintln(cmd.OutOrStdout(), j.ID)
				return nil
			}
			return watchToEnd(cmd, c, j)
		},
	}
	addClientFlags(cmd.Flags(), cf)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the job to end, showing its progress on stderr")
	cmd.Flags().StringVar(&extractor, "extractor", "", "text (default) or gemini")
	cmd.Flags().StringVar(&prompt, "prompt", "", "what to extract (gemini)")
	cmd.Flags().StringVar(&model, "model", "", "the Gemini model for this job (default: the node's --gemini-model)")
	cmd.Flags().StringVar(&schemaFile, "schema-file", "", "a JSON schema the output must match (gemini)")
	cmd.Flags().IntVar(&chunkPages, "chunk-pages", 0, "pages per chunk (default: the node's)")
	cmd.Flags().StringVar(&idemKey, "idempotency-key", "", "sent as Idempotency-Key: the same key and file again give the same job, not a second one")
	return cmd
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
	var format string
	var asText bool
	cmd := &cobra.Command{
		Use:   "result ID",
		Short: "Print a job's merged result (--format json, text, markdown or pages)",
		Long: `Print a job's merged result as the node renders it (GET /v1/jobs/{id}/result):
json (every chunk with its status, node, attempts and output), text (the whole
document, pages separated by form feeds, like pdftotext), markdown, or pages
(one {page, text} per page; per-chunk outputs for gemini jobs).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, cf, "QUIRE_API_KEY")
			if err != nil {
				return err
			}
			if asText {
				format = "text"
			}
			var body []byte
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/jobs/"+args[0]+"/result?format="+url.QueryEscape(format), nil, "", &body); err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(body)
			return err
		},
	}
	addClientFlags(cmd.Flags(), cf)
	cmd.Flags().StringVar(&format, "format", "json", "json, text, markdown or pages")
	cmd.Flags().BoolVar(&asText, "text", false, "same as --format text")
	_ = cmd.Flags().MarkDeprecated("text", "use --format text")
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
