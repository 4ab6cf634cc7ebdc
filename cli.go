package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

const usage = `bootstrap is callclock, a serverless timer service.

On AWS Lambda it is the handler of every function in template.yaml. Elsewhere:

  bootstrap invoke [-e FILE]     run one Lambda event through the handler (sam local invoke without Docker)
  bootstrap local [flags]        run the whole service against a local AWS endpoint (AWS_ENDPOINT_URL)
  bootstrap schedule EXPR [flags] print the next occurrences of a cron(...), rate(...) or at(...) expression
  bootstrap timers COMMAND [flags] every API operation (put, get, describe, list, fire, pause, ...)
                                 and applying a group's timer files; 'bootstrap timers -h' lists them
  bootstrap console [flags]      a web console on loopback for the timers, signing its calls to the API

Run 'bootstrap COMMAND -h' for a command's flags.
`

// run is the command line: it returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, log *slog.Logger) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "invoke":
		return runInvoke(ctx, args[1:], stdin, stdout, stderr, log)
	case "local":
		return runLocal(ctx, args[1:], stderr, log)
	case "schedule":
		return runSchedule(args[1:], time.Now(), stdout, stderr)
	case "timers": // cli_timers.go, cli_timer_cmds.go
		return runTimers(ctx, args[1:], stdout, stderr)
	case "console": // console.go
		return runConsole(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "bootstrap: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// newFlagSet returns a flag set that prints its usage on -h and reports
// errors to stderr.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: bootstrap %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and returns the exit code to stop with, or -1 to
// go on: 0 after -h, 2 after a bad flag.
func parseFlags(fs *flag.FlagSet, args []string) int {
	err := fs.Parse(args)
	switch {
	case err == flag.ErrHelp:
		return 0
	case err != nil:
		return 2
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	return -1
}

// runInvoke reads one raw Lambda event and runs it through the same Router
// Lambda runs, printing the handler's JSON response.
func runInvoke(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, log *slog.Logger) int {
	fs := newFlagSet("invoke", "invoke [-e FILE] [--log text|json|auto] [--metrics FILE|off]", stderr)
	file := fs.String("e", "-", "the event `FILE` to invoke with; - reads standard input")
	output := addOutputFlags(fs)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "bootstrap invoke: %v\n", err); return 1 }
	var event []byte
	var err error
	if *file == "-" {
		event, err = io.ReadAll(stdin)
	} else {
		event, err = os.ReadFile(*file)
	}
	if err != nil {
		return fail(err)
	}
	dest, err := output.open(stderr, log)
	if err != nil {
		return fail(err)
	}
	defer dest.Close()
	router, err := cliRouter(ctx, dest.Log, dest.Metrics)
	if err != nil {
		return fail(err)
	}
	out, err := router.Invoke(ctx, bytes.TrimSpace(event))
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return 0
}

// cliRouter builds the router as Lambda would, filling in what the
// environment leaves out with the local stack's names.
func cliRouter(ctx context.Context, log *slog.Logger, metrics io.Writer) (*Router, error) {
	cfg, awsCfg, clients, err := loadEnv(ctx, "us-east-1")
	if err != nil {
		return nil, err
	}
	clients = clients.forLocalEndpoint()
	if _, err := awsCfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("no AWS credentials (for the local stack: export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_ENDPOINT_URL=http://127.0.0.1:5000): %w", err)
	}
	if cfg.Table == "" {
		cfg.Table = DefaultStackNames.Table
	}
	if err := resolveQueues(ctx, clients.SQS, &cfg, DefaultStackNames); err != nil {
		// The API needs no queue; the router names what is missing if an
		// SQS or scheduled event arrives.
		log.Warn("queues not found; only API events can be invoked", "error", err.Error())
	}
	// Standard output is the handler's response alone; the metric records
	// go where --metrics says, as `bootstrap local`'s do.
	return buildRouter(routerOptions{Config: cfg, Clients: clients, Log: log, Metrics: metrics})
}

// runSchedule is `bootstrap schedule`: it prints the next occurrences of an
// expression strictly after --from, one RFC 3339 line each in the
// schedule's zone, so that users can check an expression before they use it.
func runSchedule(args []string, now time.Time, stdout, stderr io.Writer) int {
	fs := newFlagSet("schedule", "schedule EXPR [--tz ZONE] [--from RFC3339] [--count N] [--start RFC3339] [--end RFC3339]", stderr)
	tz := fs.String("tz", "UTC", "IANA time `ZONE` the expression is read in, e.g. America/New_York")
	from := fs.String("from", "", "print occurrences strictly after this RFC 3339 `instant` (default now)")
	howMany := fs.Int("count", 10, "how many occurrences to print, 1-1000")
	start := fs.String("start", "", "the timer's startAt (RFC 3339): no occurrence before it; a rate(...) is anchored at it")
	end := fs.String("end", "", "the timer's endAt (RFC 3339): no occurrence at or after it")
	expr, code := scheduleExpr(fs, args, stderr)
	if code >= 0 {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "bootstrap schedule: %s\n", ErrorMessage(err))
		return 2
	}
	if *howMany < 1 || *howMany > 1000 {
		return fail(Errorf(EINVALID, "--count must be from 1 to 1000"))
	}
	loc, err := loadZone(*tz)
	if err != nil {
		return fail(err)
	}
	spec := ScheduleSpec{Expression: expr, Location: loc}
	var after time.Time
	for _, f := range []struct {
		name, value string
		def         time.Time
		into        *time.Time
	}{{"from", *from, now, &after}, {"start", *start, time.Time{}, &spec.StartAt}, {"end", *end, time.Time{}, &spec.EndAt}} {
		if *f.into, err = flagInstant(f.name, f.value, f.def); err != nil {
			return fail(err)
		}
	}
	spec.Anchor = after // a rate(...) without --start starts as if created at --from
	sched, err := ParseSchedule(spec)
	if err != nil {
		return fail(err)
	}
	for range *howMany {
		next, ok := sched.Next(after)
		if !ok {
			break
		}
		fmt.Fprintln(stdout, next.In(loc).Format(time.RFC3339))
		after = next
	}
	return 0
}

// scheduleExpr parses fs's flags, which may stand before or after the
// one expression, and returns it; code is the exit code when it is done
// (help, a usage error), -1 otherwise.
func scheduleExpr(fs *flag.FlagSet, args []string, stderr io.Writer) (expr string, code int) {
	for rest := args; ; {
		if err := fs.Parse(rest); err == flag.ErrHelp {
			return "", 0
		} else if err != nil {
			return "", 2
		}
		if fs.NArg() == 0 {
			break
		}
		if expr != "" {
			fmt.Fprintf(stderr, "bootstrap schedule: unexpected argument %q (quote the expression: 'cron(0 9 ? * MON-FRI *)')\n", fs.Arg(0))
			return "", 2
		}
		expr, rest = fs.Arg(0), fs.Args()[1:]
	}
	if expr == "" {
		fs.Usage()
		return "", 2
	}
	return expr, -1
}

// flagInstant parses flag name's RFC 3339 value s, or returns def when
// it is empty.
func flagInstant(name, s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, Errorf(EINVALID, "--%s %q is not an RFC 3339 instant such as 2026-03-08T00:00:00-05:00", name, s)
	}
	return t, nil
}
