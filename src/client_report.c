/*
 * client_report.c -- load mode's report: the same figures as text for
 * people or as one JSON object for scripts, and the live progress line.
 * MB means 10^6 bytes; latencies are microseconds to the nanosecond the
 * histogram holds them in.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client_report.h"
#include "parse.h"

static const double percentiles[] = {50.0, 90.0, 99.0, 99.9};
#define NPERCENTILES (sizeof percentiles / sizeof percentiles[0])
/* The latency figures by name: the minimum, the percentiles, the maximum
 * and the mean. */
static const char *const text_figures[] = {"min", "p50", "p90", "p99", "p99.9", "max", "mean"};
static const char *const json_figures[] = {"min", "p50", "p90", "p99", "p99_9", "max", "mean"};
#define NFIGURES (NPERCENTILES + 3)
_Static_assert(sizeof text_figures / sizeof text_figures[0] == NFIGURES &&
               sizeof json_figures / sizeof json_figures[0] == NFIGURES,
               "a latency figure without its name");

static const char *mode_name(enum client_mode mode)
{
	return mode == CLIENT_CHURN ? "churn" : "pingpong";
}

static double per_second(uint64_t n, double secs)
{
	return secs > 0 ? (double)n / secs : 0.0;
}

/* Print V (a rate, a period) with LEAST decimals, more while that shows
 * fewer than three significant digits: 784 B/s is 0.000784 MB/s, not 0.00,
 * a message in 3 s 0.333/s, not 0.3, and a run of 345 us 0.000345 s. */
static void print_figure(FILE *out, double v, int least)
{
	int decimals = least;
	double shown = v;

	for (int i = 0; i < least; i++)
		shown *= 10.0;
	for (; shown > 0 && shown < 100.0 && decimals < 12; shown *= 10.0)
		decimals++;
	fprintf(out, "%.*f", decimals, v);
}

/* NS nanoseconds as microseconds with three decimals, exact: in integers,
 * as a double would round a latency of a day and 1 ns. */
static void print_us(FILE *out, uint64_t ns)
{
	fprintf(out, "%llu.%03u", (unsigned long long)(ns / 1000), (unsigned)(ns % 1000));
}

/* H's figures in microseconds, each NAMES[i] between OPEN and CLOSE before
 * it, SEP between two: one list for text and JSON, so that they agree. */
static void print_latencies(FILE *out, const struct histogram *h, const char *const names[],
                            const char *open, const char *close, const char *sep)
{
	uint64_t ns[NFIGURES - 1];
	unsigned i;

	ns[0] = h->min;
	for (i = 0; i < NPERCENTILES; i++)
		ns[i + 1] = histogram_percentile(h, percentiles[i]);
	ns[NPERCENTILES + 1] = h->max;
	for (i = 0; i < NFIGURES - 1; i++) {
		fprintf(out, "%s%s%s%s", i ? sep : "", open, names[i], close);
		print_us(out, ns[i]);
	}
	fprintf(out, "%s%s%s%s%.3f", sep, open, names[i], close, histogram_mean(h) / 1000.0);
}

/* Whole percent, rounded down. The product is a hair below the whole
 * percent it means for many shares (0.58 * 100 is 57.99999999999999 in
 * doubles; x87's wider registers on i386 add more, 0.95 * 100 there), so a
 * billionth of a percent goes on before the cut: a share shows as the
 * percent it is. */
static int percent(double share)
{
	return (int)(share * 100.0 + 1e-9);
}

/* A load thread on a CPU this percent of its run time or more, or threads
 * using this percent of the CPUs they could use, had no time to wait for
 * the server: the rate measured may be the client's own. Compared as the
 * report shows it, so that a warning comes with 90% shown and never with
 * 89%. Runs shorter than CLIENT_SATURATED_MIN_S say too little to warn of. */
#define CLIENT_SATURATED_PERCENT 90
#define CLIENT_SATURATED_MIN_S 0.2

static bool client_report_saturated(const struct load_result *r)
{
	return r->run_s >= CLIENT_SATURATED_MIN_S &&
	       (percent(r->busiest) >= CLIENT_SATURATED_PERCENT ||
	        percent(r->cpu_share) >= CLIENT_SATURATED_PERCENT);
}

bool client_report_ok(const struct load_result *r)
{
	return r->errors == 0 && r->messages_echoed > 0;
}

void client_report_text(FILE *out, const struct client_config *cfg, const struct load_result *r)
{
	const struct histogram *h = &r->latency;
	const char *unit = cfg->mode == CLIENT_CHURN ? "connects" : "messages";
	char target[4 * PE_NET_ADDRLEN];

	/* For a terminal: an interface's name with its control characters as \xNN. */
	fprintf(out, "target:      %s, ", pe_parse_shown(r->target, strlen(r->target), target,
	                                                  sizeof target));
	if (cfg->nsources)
		fprintf(out, "from %u source address%s, ", cfg->nsources,
		        cfg->nsources == 1 ? "" : "es");
	fprintf(out, "%s, %lu connection%s, %lu-byte messages, pipeline %lu, ", mode_name(cfg->mode),
	        cfg->connections, cfg->connections == 1 ? "" : "s", cfg->size, cfg->pipeline);
	if (cfg->rate)
		fprintf(out, "rate %lu/s each, ", cfg->rate);
	fprintf(out, "%u thread%s\n", r->threads, r->threads == 1 ? "" : "s");
	fputs("duration:    ", out);
	print_figure(out, r->elapsed_s, 3);
	fprintf(out, " s%s\n", r->interrupted ? " (interrupted)" : "");
	fprintf(out, "connections: %llu opened (", (unsigned long long)r->conns_opened);
	print_figure(out, per_second(r->conns_opened, r->elapsed_s), 1);
	fprintf(out, "/s), %llu failed, ", (unsigned long long)r->conns_failed);
	if (r->conns_pending)
		fprintf(out, "%llu still connecting at the stop, ",
		        (unsigned long long)r->conns_pending);
	fprintf(out, "peak %llu open at once\n", (unsigned long long)r->peak_open);
	/* Paced churn connections are short and seldom overlap, by design. */
	if (r->peak_open < cfg->connections && !(cfg->mode == CLIENT_CHURN && cfg->rate)) {
		fprintf(out, "warning:     at most %llu of the %lu connections asked for were open at "
		        "once", (unsigned long long)r->peak_open, cfg->connections);
		if (r->conns_pending)
			fprintf(out, ", and %llu %s still connecting at the stop",
			        (unsigned long long)r->conns_pending, r->conns_pending == 1 ? "was" : "were");
		fputs("; the figures are for that many\n", out);
	}
	if (r->conns_unserved)
		fprintf(out, "warning:     %llu connection%s got no echo by the stop, though %s first "
		        "message went out in the first half of the run: the server left %s waiting "
		        "(fewer workers than connections?); an echo that came after the stop counts, "
		        "its wait in the latency\n",
		        (unsigned long long)r->conns_unserved, r->conns_unserved == 1 ? "" : "s",
		        r->conns_unserved == 1 ? "its" : "their", r->conns_unserved == 1 ? "it" : "them");
	if (r->conns_abandoned)
		fprintf(out, "warning:     %llu connection%s still owed echoes a second after the "
		        "signal and %s given up: not counted as errors, as --timeout had not run "
		        "out\n", (unsigned long long)r->conns_abandoned,
		        r->conns_abandoned == 1 ? "" : "s", r->conns_abandoned == 1 ? "was" : "were");
	fprintf(out, "messages:    %llu sent, %llu echoed, ",
	        (unsigned long long)r->messages_sent, (unsigned long long)r->messages_echoed);
	print_figure(out, per_second(r->messages_echoed, r->elapsed_s), 1);
	fprintf(out, " msg/s\nbytes:       %llu sent, %llu echoed, ",
	        (unsigned long long)r->bytes_sent, (unsigned long long)r->bytes_echoed);
	print_figure(out, per_second(r->bytes_echoed, r->elapsed_s) / 1e6, 2);
	fputs(" MB/s\n", out);
	if (cfg->rate)
		fprintf(out, "schedule:    %llu %s went out a period or more after their slot; %llu "
		        "slots came due but were unused at the stop\n",
		        (unsigned long long)r->slots_late, unit, (unsigned long long)r->slots_unused);
	if (h->count) {
		fputs("latency us:  ", out);
		print_latencies(out, h, text_figures, "", " ", "  ");
		fprintf(out, "  (percentiles within %.3f%%)\n", HISTOGRAM_REL_ERROR * 100.0);
	} else {
		fprintf(out, "latency us:  no message completed\n");
	}
	if (r->cpu_quota)
		fprintf(out, "client CPU:  %.3f s, %d%% of the %.2f CPUs the cgroup CPU quota gives "
		        "its %u thread%s; the busiest thread %d%% busy\n", r->cpu_s,
		        percent(r->cpu_share), r->cpu_quota, r->threads, r->threads == 1 ? "" : "s",
		        percent(r->busiest));
	else
		fprintf(out, "client CPU:  %.3f s, %d%% of the %u CPU%s its %u thread%s could use; "
		        "the busiest thread %d%% busy\n", r->cpu_s, percent(r->cpu_share), r->cpus,
		        r->cpus == 1 ? "" : "s", r->threads, r->threads == 1 ? "" : "s",
		        percent(r->busiest));
	if (client_report_saturated(r)) {
		/* -t cannot go past one thread per connection. */
		const char *advice = r->cpu_quota ? "raise its cgroup CPU quota" :
			r->threads < cfg->connections ?
			"give it more CPUs, and -t threads to use them" :
			"it has a thread per connection already: give it more, faster or less busy CPUs";

		fprintf(out, "warning:     the client was busy %d%% of its time: these figures may be "
		        "its limit, not the server's (%s)\n",
		        percent(r->busiest > r->cpu_share ? r->busiest : r->cpu_share), advice);
	}
	fprintf(out, "errors:      %llu (mismatches %llu, early closes %llu, timeouts %llu, "
	        "connect failures %llu, other %llu)\n", (unsigned long long)r->errors,
	        (unsigned long long)r->mismatches, (unsigned long long)r->early_closes,
	        (unsigned long long)r->timeouts, (unsigned long long)r->conns_failed,
	        (unsigned long long)r->other_errors);
	if (r->first_error[0]) {
		char shown[4 * sizeof r->first_error];

		fprintf(out, "first error: %s\n", pe_parse_shown(r->first_error,
		                                                  strlen(r->first_error), shown,
		                                                  sizeof shown));
	}
	fprintf(out, "result:      %s\n", r->errors ? "FAILED" : !client_report_ok(r) ?
	        "FAILED, no message was echoed" : "OK, every echoed byte verified");
}

/* The length of the well-formed UTF-8 character at S (RFC 3629: no
 * overlong form, no surrogate, nothing past U+10FFFF), or 0. */
static size_t utf8_char_len(const unsigned char *s)
{
	size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
	unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* S as a JSON string: UTF-8 as it is, control characters escaped, and a
 * byte that is not part of a whole UTF-8 character as U+FFFD, so that the
 * report stays valid JSON (RFC 8259 requires UTF-8) whatever S holds. C1
 * (U+0080-U+009F) is escaped too, though JSON would take it raw: an
 * interface's name in the target may hold U+009B, which a terminal
 * showing the report takes for CSI (messages show it as \xNN). */
static void json_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	putc('"', out);
	while (*p) {
		size_t len;

		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p++);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p++);
		else if (*p < 0x80)
			putc(*p++, out);
		else if ((len = utf8_char_len(p)) == 2 && p[0] == 0xc2 && p[1] <= 0x9f) {
			fprintf(out, "\\u%04x", p[1]);
			p += len;
		} else if (len > 0) {
			fwrite(p, 1, len, out);
			p += len;
		} else {
			fputs("\\ufffd", out);
			p++;
		}
	}
	putc('"', out);
}

#define JU(key, v) fprintf(out, "\"%s\":%llu,", key, (unsigned long long)(v))

void client_report_json(FILE *out, const struct client_config *cfg, const struct load_result *r)
{
	const struct histogram *h = &r->latency;
	unsigned i;

	fputs("{\"target\":", out);
	json_string(out, r->target);
	fprintf(out, ",\"mode\":\"%s\",", mode_name(cfg->mode));
	JU("connections", cfg->connections);
	JU("size", cfg->size);
	JU("pipeline", cfg->pipeline);
	JU("rate", cfg->rate);
	JU("threads", r->threads);
	JU("source_addresses", cfg->nsources);
	fputs("\"duration_s\":", out);
	print_figure(out, r->elapsed_s, 6);
	fprintf(out, ",\"interrupted\":%s,", r->interrupted ? "true" : "false");
	JU("connections_opened", r->conns_opened);
	JU("connections_failed", r->conns_failed);
	JU("connections_pending", r->conns_pending);
	JU("connections_unserved", r->conns_unserved);
	JU("connections_abandoned", r->conns_abandoned);
	JU("peak_open", r->peak_open);
	JU("messages_sent", r->messages_sent);
	JU("messages_echoed", r->messages_echoed);
	JU("bytes_sent", r->bytes_sent);
	JU("bytes_echoed", r->bytes_echoed);
	fputs("\"connections_per_s\":", out);
	print_figure(out, per_second(r->conns_opened, r->elapsed_s), 3);
	fputs(",\"messages_per_s\":", out);
	print_figure(out, per_second(r->messages_echoed, r->elapsed_s), 3);
	fputs(",\"mb_per_s\":", out);
	print_figure(out, per_second(r->bytes_echoed, r->elapsed_s) / 1e6, 6);
	putc(',', out);
	JU("slots_late", r->slots_late);
	JU("slots_unused", r->slots_unused);
	fprintf(out, "\"latency_us\":{\"count\":%llu,", (unsigned long long)h->count);
	if (h->count) {
		print_latencies(out, h, json_figures, "\"", "\":", ",");
		putc(',', out);
	} else {
		/* No sample: null, not a latency of 0 us. */
		for (i = 0; i < NFIGURES; i++)
			fprintf(out, "\"%s\":null,", json_figures[i]);
	}
	/* Exact (1/256 is 0.00390625): rounded down, the bound would not
	 * cover a value at a bucket's edge. */
	fprintf(out, "\"relative_error\":%.17g},", HISTOGRAM_REL_ERROR);
	fprintf(out, "\"client_cpu_s\":%.6f,\"client_cpus\":%u,", r->cpu_s, r->cpus);
	if (r->cpu_quota)
		fprintf(out, "\"client_cpu_quota\":%.6f,", r->cpu_quota);
	else
		fputs("\"client_cpu_quota\":null,", out);
	fprintf(out, "\"client_cpu_share\":%.6f,\"client_busiest\":%.6f,\"client_saturated\":%s,",
	        r->cpu_share, r->busiest, client_report_saturated(r) ? "true" : "false");
	JU("errors", r->errors);
	JU("mismatches", r->mismatches);
	JU("early_closes", r->early_closes);
	JU("timeouts", r->timeouts);
	JU("connect_failures", r->conns_failed);
	JU("other_errors", r->other_errors);
	fputs("\"first_error\":", out);
	if (r->first_error[0])
		json_string(out, r->first_error);
	else
		fputs("null", out);
	fprintf(out, ",\"ok\":%s}\n", client_report_ok(r) ? "true" : "false");
}

bool client_report_progress_wanted(const struct client_config *cfg, FILE *out)
{
	return !cfg->quiet && isatty(fileno(out));
}

/* The shortest time a progress line's rates are taken over, in seconds. */
#define PROGRESS_MIN_S 0.5

void client_report_progress(void *ctx, const struct load_progress *p)
{
	struct report_progress *rp = ctx;
	double dt = p->elapsed_s - rp->last_elapsed;

	/* A run of 2 s or less is over before a progress line would help. */
	if ((rp->cfg->duration_ms && rp->cfg->duration_ms <= 2000) ||
	    (!rp->cfg->duration_ms && p->elapsed_s < 2.0))
		goto remember;
	/* Rates of a moment are noise: this one goes into the next line's. */
	if (dt < PROGRESS_MIN_S)
		return;
	fprintf(rp->out, "\r%7.1f s  %10.0f msg/s  %8.2f MB/s  %llu connection%s  %llu error%s\033[K",
	        p->elapsed_s, (double)(p->messages_echoed - rp->last_echoed) / dt,
	        (double)(p->bytes_echoed - rp->last_bytes) / dt / 1e6,
	        (unsigned long long)p->conns_opened, p->conns_opened == 1 ? "" : "s",
	        (unsigned long long)p->errors, p->errors == 1 ? "" : "s");
	fflush(rp->out);
	rp->shown = true;
remember:
	rp->last_elapsed = p->elapsed_s;
	rp->last_echoed = p->messages_echoed;
	rp->last_bytes = p->bytes_echoed;
}

void client_report_progress_end(struct report_progress *rp)
{
	if (rp->shown) {
		fputs("\r\033[K", rp->out);
		fflush(rp->out);
	}
}
