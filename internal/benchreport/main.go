// Command benchreport prints the table of the records that benchmarks
// added with package benchrec, and writes them as one JSON document.
//
//	go run ./internal/benchreport RECORDS.jsonl [OUT.json]
//
// It exits non-zero only when the records can't be read.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/peer-project/peer/internal/benchrec"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchreport RECORDS.jsonl [OUT.json]")
		os.Exit(2)
	}
	recs, err := read(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FIGURE\tVALUE\tLIMIT (same run)\tRATIO\tTARGET\tMET")
	met := 0
	for _, r := range recs {
		limit, ratio := "-", "-"
		if r.Limit != 0 {
			limit = fmt.Sprintf("%s %s", num(r.Limit), r.LimitName)
			ratio = fmt.Sprintf("%.2fx", r.Ratio)
		}
		ok := "no"
		if r.Met {
			ok = "yes"
			met++
		}
		fmt.Fprintf(w, "%s\t%s %s\t%s\t%s\t%s\t%s\n", r.Name, num(r.Figure), r.Unit, limit, ratio, r.Target, ok)
	}
	w.Flush()
	fmt.Printf("%d of %d targets met\n", met, len(recs))
	if len(os.Args) > 2 {
		b, _ := json.MarshalIndent(map[string]any{"records": recs}, "", "  ")
		if err := os.WriteFile(os.Args[2], append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
		fmt.Println("written to", os.Args[2])
	}
}

func read(path string) ([]benchrec.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []benchrec.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r benchrec.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

func num(v float64) string {
	if v >= 100 || v == float64(int64(v)) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
