/*
 * net.c -- socket helpers: listen, connect (within a time limit), resolve,
 * format an address, and set the options an echoed socket needs.
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_LINUX_NSFS_H
#include <linux/nsfs.h>
#endif
/* Linux 4.9's, where the kernel's headers are not installed (musl's
 * systems): without it every root refused would be told it holds the
 * capability only in a user namespace of its own. */
#if !defined(NS_GET_USERNS) && defined(__linux__) && defined(_IO)
#define NS_GET_USERNS _IO(0xb7, 0x1)
#endif

#include "monotonic.h"
#include "net.h"
#include "parse.h"
#include "sysfile.h"

/* Linux's since 4.2; Debian 12's glibc headers lack it (<linux/in.h>
 * has it, but clashes with <netinet/in.h>). The value is kernel ABI. */
#if defined(__linux__) && !defined(IP_BIND_ADDRESS_NO_PORT)
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err, PE_NET_ERRLEN, fmt, ap);
	va_end(ap);
}

/* NAME as an error message shows it: quoted, so that a stray space is
 * seen; control characters as \xNN (pe_parse_shown); and a long name cut
 * to NAME_SHOWN bytes with its length in characters after the quote, so
 * that the reason after it still fits in PE_NET_ERRLEN. */
#define NAME_SHOWN 64
#define NAME_SHOWN_SIZE (NAME_SHOWN + 48)
static const char *shown_name(const char *name, char out[NAME_SHOWN_SIZE])
{
	size_t len = strlen(name), chars = 0, n;

	out[0] = '\'';
	pe_parse_shown(name, len, out + 1, NAME_SHOWN + 1);
	n = strlen(out);
	out[n++] = '\'';
	out[n] = '\0';
	if (pe_parse_shown_len(name, len) <= NAME_SHOWN)
		return out;
	for (const char *c = name; *c; c++)
		chars += ((unsigned char)*c & 0xc0) != 0x80;
	snprintf(out + n, NAME_SHOWN_SIZE - n, " (%zu characters)", chars);
	return out;
}

/* Room kept at the end of ERR for end_failures()'s "; N more
 * addresses" and for a hint after the list (privileged_port_hint's, some
 * 90 bytes), which a name with many addresses would otherwise push out. */
#define FAILURES_RESERVE 128

/* Record that address WHERE failed for REASON. The first failure makes ERR
 * "LEAD WHERE: REASON"; later ones add "; WHERE: REASON", so that a name
 * with several addresses has each one named, not only the last; those
 * past the room are counted in *OMITTED, not cut mid-word. */
static void add_failure(char *err, unsigned *failures, unsigned *omitted, const char *lead,
                        const char *where, const char *reason)
{
	size_t len;
	int n;

	if (!err)
		return;
	if ((*failures)++ == 0) {
		set_err(err, "%s %s: %s", lead, where, reason);
		return;
	}
	len = strlen(err);
	n = snprintf(NULL, 0, "; %s: %s", where, reason);
	if (*omitted || n < 0 || len + (size_t)n >= PE_NET_ERRLEN - FAILURES_RESERVE) {
		(*omitted)++;
		return;
	}
	/* It fits, as checked; the result looked at keeps gcc -O3, which
	 * cannot tell, from warning of a cut (-Wformat-truncation). */
	if (snprintf(err + len, PE_NET_ERRLEN - len, "; %s: %s", where, reason) < 0)
		err[len] = '\0';
}

/* Say how many failures add_failure() left out for want of room. */
static void end_failures(char *err, unsigned omitted)
{
	size_t len;

	if (!err || !omitted)
		return;
	len = strlen(err);
	snprintf(err + len, PE_NET_ERRLEN - len, "; %u more address%s failed too", omitted,
	         omitted == 1 ? "" : "es");
}

/* HOST, from getnameinfo, as messages may show it: an IPv6 scope is the
 * interface's name, which may hold any byte but '/', ':' and white space,
 * so control characters become \xNN (pe_parse_shown), cut with "..." to
 * SIZE. */
static const char *shown_host(char *host, size_t size)
{
	char raw[NI_MAXHOST];
	size_t len = strlen(host);

	if (pe_parse_shown_len(host, len) == len)
		return host;
	memcpy(raw, host, len + 1);
	return pe_parse_shown(raw, len, host, size);
}

/* glibc writes an IPv6 address whose first 96 bits are zero in the
 * deprecated IPv4-compatible form (RFC 4291 2.5.5.1): ::1:9999, typed as
 * ::1 port 9999, comes back as ::0.1.153.153, which the user cannot match
 * to what was typed. Such a HOST (SIZE bytes) is written as RFC 5952 has
 * it, in hexadecimal: ::1:9999, a scope after it kept (none comes: such an
 * address is never link-local). One typed dotted (::1.2.3.4) is then
 * named ::102:304: the address alone is left, not how it was typed. */
static void v4compat_as_hex(const struct sockaddr *sa, socklen_t len, char *host, size_t size)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	const unsigned char *b;
	char hex[sizeof "::ffff:ffff"];
	const char *scope;
	size_t n, tail;

	if (sa->sa_family != AF_INET6 || len < sizeof *s6 || !IN6_IS_ADDR_V4COMPAT(&s6->sin6_addr))
		return;
	scope = strchr(host, '%');
	tail = scope ? strlen(scope) : 0;
	b = s6->sin6_addr.s6_addr;
	if (b[12] == 0 && b[13] == 0)
		snprintf(hex, sizeof hex, "::%x", (unsigned)(b[14] << 8 | b[15]));
	else
		snprintf(hex, sizeof hex, "::%x:%x", (unsigned)(b[12] << 8 | b[13]),
		         (unsigned)(b[14] << 8 | b[15]));
	n = strlen(hex);
	if (n + tail >= size)
		return; /* cannot be: glibc's form is the longer */
	memmove(host + n, scope ? scope : "", tail + 1);
	memcpy(host, hex, n);
}

static void format_address(const struct sockaddr *sa, socklen_t len, char out[PE_NET_ADDRLEN],
                           bool shown)
{
	char host[PE_NET_ADDRLEN - 11], serv[8]; /* in "[HOST]:SERV" */

	if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv,
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, PE_NET_ADDRLEN, "(unknown address)");
		return;
	}
	v4compat_as_hex(sa, len, host, sizeof host);
	if (shown)
		shown_host(host, sizeof host);
	if (sa->sa_family == AF_INET6)
		snprintf(out, PE_NET_ADDRLEN, "[%s]:%s", host, serv);
	else
		snprintf(out, PE_NET_ADDRLEN, "%s:%s", host, serv);
}

void pe_net_format(const struct sockaddr *sa, socklen_t len, char out[PE_NET_ADDRLEN])
{
	format_address(sa, len, out, true);
}

void pe_net_format_exact(const struct sockaddr *sa, socklen_t len, char out[PE_NET_ADDRLEN])
{
	format_address(sa, len, out, false);
}

void pe_net_peer_name(int fd, char out[PE_NET_ADDRLEN])
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		pe_net_format((struct sockaddr *)&ss, len, out);
	else
		snprintf(out, PE_NET_ADDRLEN, "(unknown peer: %s)", strerror(errno));
}

int pe_net_dual_stack(const char *host, const struct sockaddr *sa)
{
	/* An explicit IPv6 address means IPv6 only; "all addresses" means both,
	 * and so does an IPv4-mapped address (::ffff:a.b.c.d), which only a
	 * dual-stack socket can bind. */
	return sa->sa_family == AF_INET6 &&
	       (!host ||
	        IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr));
}

/* A listening socket on SA, resolved from HOST (NULL: all addresses), or
 * -errno with *CALL naming the call that failed: "bind" says more than
 * the errno text alone. */
static int listen_on(const char *host, const struct sockaddr *sa, socklen_t len, int backlog,
                     const char **call)
{
	int one = 1, zero = 0, dual_stack = pe_net_dual_stack(host, sa);
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*call = "socket";
	if (fd < 0)
		return -errno;
	*call = "setsockopt SO_REUSEADDR";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		goto fail;
	*call = "setsockopt IPV6_V6ONLY";
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? &zero : &one, sizeof one) < 0)
		goto fail;
	*call = "bind";
	if (bind(fd, sa, len) < 0)
		goto fail;
	*call = "listen";
	if (listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:;
	int e = errno;
	close(fd);
	return -e;
}

int pe_net_holds_capability(unsigned bit)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long caps;
	int held = -1;

	if (!f)
		return -1;
	while (held < 0 && fgets(line, sizeof line, f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			held = (int)((caps >> bit) & 1);
	fclose(f);
	return held;
}

/* Whether a capability this process holds in its own user namespace
 * counts in its network namespace: whether that namespace's owner is its
 * user namespace or one below it (nsenter --net into a rootless
 * container's, as root of the host), which NS_GET_USERNS gives, and none
 * above it (unshare -r), which it refuses with EPERM (as it does where
 * there are no user namespaces at all). 1 or 0; -1 when the kernel cannot
 * tell (before Linux 4.9, no /proc). */
static int capability_counts_in_netns(void)
{
#ifdef NS_GET_USERNS
	int net = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), user, rc;

	if (net < 0)
		return -1;
	user = ioctl(net, NS_GET_USERNS);
	if (user >= 0) {
		close(user);
		rc = 1;
	} else if (errno != EPERM) {
		rc = -1;
	} else if (access("/proc/self/ns/user", F_OK) == 0) {
		rc = 0;
	} else {
		/* A kernel without user namespaces (CONFIG_USER_NS off) says
		 * EPERM too: its one user namespace owns every network
		 * namespace, so the capability counts. */
		rc = errno == ENOENT ? 1 : -1;
	}
	close(net);
	return rc;
#else
	return -1;
#endif
}

/* bind(2) refuses a port below net.ipv4.ip_unprivileged_port_start with
 * only "Permission denied": when that is why FD (a -errno from CALL) failed,
 * add to ERR what the port needs. */
static void privileged_port_hint(char *err, unsigned port, int fd, const char *call)
{
	long first = pe_sysfile_number("/proc/sys/net/ipv4/ip_unprivileged_port_start");
	const char *needs = "root or CAP_NET_BIND_SERVICE";
	size_t len;
	int counts;

	if (first < 0)
		first = 1024; /* the kernel's default, and the rule elsewhere */
	if (!err || fd != -EACCES || strcmp(call, "bind") != 0 || port == 0 ||
	    port >= (unsigned long)first)
		return;
	/* Root refused has lost the capability, or holds it only in a user
	 * namespace of its own (unshare -r), which does not own the network
	 * namespace, or holds it where it counts and was refused by something
	 * else: "need root" would mislead, and so would "lacks". */
	if (geteuid() == 0) {
		if (pe_net_holds_capability(10) != 1) /* CAP_NET_BIND_SERVICE */
			needs = "CAP_NET_BIND_SERVICE, which this root process lacks "
			        "(its container, unit or user namespace dropped it)";
		else if ((counts = capability_counts_in_netns()) == 1)
			needs = "CAP_NET_BIND_SERVICE, which this root process holds: "
			        "something else refused the port (a security module such "
			        "as SELinux or AppArmor, or a seccomp filter)";
		else if (counts == 0)
			needs = "CAP_NET_BIND_SERVICE in the user namespace that owns this "
			        "network namespace; this root process holds it only in its "
			        "own user namespace (unshare -r, a rootless container)";
		else  /* the kernel cannot say which: not guessed */
			needs = "CAP_NET_BIND_SERVICE in the user namespace that owns this "
			        "network namespace";
	}
	len = strlen(err);
	if (len < PE_NET_ERRLEN - 1)
		snprintf(err + len, PE_NET_ERRLEN - len, "; ports below %ld "
		         "(net.ipv4.ip_unprivileged_port_start) need %s", first, needs);
}

/* Whether PORT can be bound on FAMILY's every-address alone (IPv6 only for
 * AF_INET6): 0, or -errno. The socket is closed at once, never listening. */
static int wildcard_bind_probe(int family, unsigned port)
{
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
	                          .sin6_addr = IN6ADDR_ANY_INIT};
	struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                         .sin_addr.s_addr = htonl(INADDR_ANY)};
	int one = 1, rc = 0, fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
	    (family == AF_INET6 ? bind(fd, (struct sockaddr *)&s6, sizeof s6)
	                        : bind(fd, (struct sockaddr *)&s4, sizeof s4)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

bool pe_net_ipv6_has_an_address(void)
{
	struct ifaddrs *list;
	bool found = false;

	if (getifaddrs(&list) < 0)
		return true;
	for (const struct ifaddrs *i = list; i && !found; i = i->ifa_next)
		found = i->ifa_addr && i->ifa_addr->sa_family == AF_INET6;
	freeifaddrs(list);
	return found;
}

/* A dual-stack listen refused as in use may clash on one family only
 * (another server on 127.0.0.1, say), which the errno text hides: when the
 * other family's half is free, add to ERR which half is taken. */
static void one_family_in_use_hint(char *err, unsigned port, int fd, const char *call)
{
	int v4, v6;
	size_t len;
	const char *taken, *free_address, *free_family;

	if (fd != -EADDRINUSE || strcmp(call, "bind") != 0 || port == 0)
		return;
	v4 = wildcard_bind_probe(AF_INET, port);
	v6 = wildcard_bind_probe(AF_INET6, port);
	if (v4 == -EADDRINUSE && v6 == 0 && pe_net_ipv6_has_an_address())
		taken = "IPv4", free_address = "::", free_family = "IPv6";
	else if (v6 == -EADDRINUSE && v4 == 0)
		taken = "IPv6", free_address = "0.0.0.0", free_family = "IPv4";
	else
		return;
	len = strlen(err);
	if (len < PE_NET_ERRLEN - 1)
		snprintf(err + len, PE_NET_ERRLEN - len,
		         " on %s only (listening on %s alone would serve %s)", taken, free_address,
		         free_family);
}

/* Whether AI's address came before it in LIST: getaddrinfo(3) gives one
 * twice for a name a hosts file lists on two lines. */
static int listed_before(const struct addrinfo *list, const struct addrinfo *ai)
{
	for (const struct addrinfo *p = list; p != ai; p = p->ai_next)
		if (p->ai_addrlen == ai->ai_addrlen &&
		    memcmp(p->ai_addr, ai->ai_addr, ai->ai_addrlen) == 0)
			return 1;
	return 0;
}

int pe_net_listen(const char *host, unsigned port, int backlog, char err[PE_NET_ERRLEN])
{
	return pe_net_listen_counted(host, port, backlog, err, NULL);
}

bool pe_net_scoped_ipv6(const char *host, struct in6_addr *addr, const char **scope)
{
	const char *mark = strchr(host, '%');
	char text[INET6_ADDRSTRLEN];

	if (!mark || (size_t)(mark - host) >= sizeof text)
		return false;
	memcpy(text, host, (size_t)(mark - host));
	text[mark - host] = '\0';
	if (inet_pton(AF_INET6, text, addr) != 1)
		return false;
	*scope = mark + 1;
	return true;
}

bool pe_net_scope_heeded(const struct in6_addr *addr)
{
	/* Linux's __ipv6_addr_needs_scope_id(): bind(2) and connect(2) read
	 * sin6_scope_id for these alone, and drop it for any other. */
	return IN6_IS_ADDR_LINKLOCAL(addr) || IN6_IS_ADDR_MC_LINKLOCAL(addr) ||
	       IN6_IS_ADDR_MC_NODELOCAL(addr);
}

/* HOST an IPv6 address with a scope ("fe80::1%eth0"): getaddrinfo(3)
 * takes one whose interface it does not know for a host name, asks the
 * name servers, and says only "Name or service not known"; glibc refuses
 * an interface's name after an address that is not link-local, and takes
 * an index there, which the kernel then drops without a word (::1%1 is
 * ::1, on every interface). So an interface that is not there (a typo, or
 * none after the '%'), and one after an address that takes none, are said
 * before the lookup. WHY, or NULL when the scope is not the problem. */
#define SCOPE_WHY_SIZE (2 * NAME_SHOWN_SIZE + 2 * INET6_ADDRSTRLEN + 96)
static const char *scope_problem(const char *host, char why[SCOPE_WHY_SIZE])
{
	const char *scope;
	char ifname[NAME_SHOWN_SIZE];
	struct in6_addr a6;
	unsigned index;
	int len;

	if (!pe_net_scoped_ipv6(host, &a6, &scope))
		return NULL;
	if (!*scope) {
		snprintf(why, SCOPE_WHY_SIZE, "no interface after the '%%'");
		return why;
	}
	len = (int)(scope - 1 - host);
	if (!pe_net_scope_heeded(&a6)) {
		snprintf(why, SCOPE_WHY_SIZE, "a scope (%s) is heeded only after a link-local "
		         "address (fe80::/10, as in fe80::1%%eth0): the kernel would ignore it after "
		         "%.*s; give %.*s alone", shown_name(scope - 1, ifname), len, host, len, host);
		return why;
	}
	/* A number is an index, which the resolver takes as it is. */
	if (strspn(scope, "0123456789") == strlen(scope))
		return NULL;
	index = if_nametoindex(scope);
	/* It asks the kernel through a socket of its own: only ENODEV says
	 * there is no such interface; without a socket (the limit of open
	 * files reached) nothing is known of the name, and glibc's errno
	 * then is ENOENT: the lookup's own failure is said. */
	if (index == 0 && errno != ENODEV)
		return NULL;
	if (index == 0) {
		snprintf(why, SCOPE_WHY_SIZE, "no interface of this host is named %s",
		         shown_name(scope, ifname));
		return why;
	}
	return NULL;
}

const char *pe_net_scope_refused(const char *host, char why[PE_NET_ERRLEN])
{
	char text[SCOPE_WHY_SIZE];
	const char *problem = scope_problem(host, text);

	if (!problem)
		return NULL;
	snprintf(why, PE_NET_ERRLEN, "%s", problem);
	return why;
}

/* getaddrinfo(3) of HOST and PORT, its scope looked at first: 0, or
 * getaddrinfo's error with *REASON saying why (in WHY when the scope is). */
static int lookup_scoped(const char *host, const char *port, const struct addrinfo *hints,
                         struct addrinfo **res, const char **reason, char why[SCOPE_WHY_SIZE])
{
	int rc;

	if ((*reason = scope_problem(host, why)))
		return EAI_NONAME;
	rc = getaddrinfo(host, port, hints, res);
	if (rc != 0)
		*reason = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
	return rc;
}

int pe_net_listen_counted(const char *host, unsigned port, int backlog,
                          char err[PE_NET_ERRLEN], unsigned *unused)
{
	char portstr[16], where[PE_NET_ADDRLEN], why[160], scope_why[SCOPE_WHY_SIZE];
	const char *call = "socket", *reason;
	struct addrinfo hints, *res, *ai;
	int fd = -EADDRNOTAVAIL, rc;
	unsigned addresses = 0, failures = 0, omitted = 0;

	if (unused)
		*unused = 0;

	if (port > 65535) {
		set_err(err, "port %u: out of range, expected 0 to 65535", port);
		return -EINVAL;
	}
	snprintf(portstr, sizeof portstr, "%u", port);
	if (!host) {
		/* All addresses: IPv6 dual-stack where the kernel has IPv6. */
		struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
		                          .sin6_addr = IN6ADDR_ANY_INIT};
		struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
		                         .sin_addr.s_addr = htonl(INADDR_ANY)};
		fd = listen_on(NULL, (struct sockaddr *)&s6, sizeof s6, backlog, &call);
		if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL)
			fd = listen_on(NULL, (struct sockaddr *)&s4, sizeof s4, backlog, &call);
		if (fd < 0) {
			set_err(err, "cannot listen on all addresses port %s: %s: %s", portstr, call,
			        strerror(-fd));
			privileged_port_hint(err, port, fd, call);
			one_family_in_use_hint(err, port, fd, call);
		}
		return fd;
	}

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = lookup_scoped(host, portstr, &hints, &res, &reason, scope_why);
	if (rc != 0) {
		char name[NAME_SHOWN_SIZE];

		set_err(err, "cannot resolve listen address %s: %s", shown_name(host, name), reason);
		return -EINVAL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = listen_on(host, ai->ai_addr, ai->ai_addrlen, backlog, &call);
		if (fd >= 0)
			break;
		pe_net_format(ai->ai_addr, ai->ai_addrlen, where);
		snprintf(why, sizeof why, "%s: %s%s", call, strerror(-fd),
		         pe_net_address_hint(ai->ai_addr, fd, strcmp(call, "bind") == 0));
		add_failure(err, &failures, &omitted, "cannot listen on", where, why);
	}
	end_failures(err, omitted);
	if (fd < 0)
		privileged_port_hint(err, port, fd, call);
	for (ai = res; ai; ai = ai->ai_next)
		addresses += !listed_before(res, ai);
	if (unused && fd >= 0)
		*unused = addresses - 1;
	freeaddrinfo(res);
	return fd;
}

int pe_net_resolve(const char *host, const char *port, struct sockaddr_storage *addr,
                   socklen_t *len, char err[PE_NET_ERRLEN])
{
	struct addrinfo *res;
	int rc = pe_net_lookup(host, port, &res, err);

	if (rc < 0)
		return rc;
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Connect FD to SA within TIMEOUT_MS (0 = as long as the kernel tries):
 * 0, -ETIME when our own time ran out, -ECANCELED as soon as CANCEL_FD
 * (when >= 0) is readable, or the connect errno. FD is left blocking.
 * -ECONNRESET also when the connect was answered but the server reset the
 * connection (or closed, then reset it) before we looked: only a
 * connection that was made can be reset, as one never made is refused. */
static int connect_within(int fd, const struct sockaddr *sa, socklen_t len,
                          unsigned long timeout_ms, int cancel_fd)
{
	int64_t start_ms;
	int soerr = 0, rc;
	socklen_t errlen = sizeof soerr;

	if (timeout_ms == 0 && cancel_fd < 0)
		return connect(fd, sa, len) == 0 ? 0 : errno == EPIPE ? -ECONNRESET : -errno;
	if ((rc = pe_net_set_nonblocking(fd, 1)) < 0)
		return rc;
	start_ms = pe_now_ms();
	rc = connect(fd, sa, len) == 0 ? 0 : -errno;
	while (rc == -EINPROGRESS || rc == -EINTR) {
		struct pollfd pfd[2] = {{.fd = fd, .events = POLLOUT},
		                        {.fd = cancel_fd, .events = POLLIN}};
		long long left = -1;

		if (timeout_ms) {
			left = (long long)timeout_ms - (pe_now_ms() - start_ms);
			/* Time is up: one last look all the same, as a client not
			 * scheduled for a while may come back to a connect that
			 * was answered meanwhile. */
			if (left < 0)
				left = 0;
		}
		rc = poll(pfd, cancel_fd >= 0 ? 2 : 1, left > INT_MAX ? INT_MAX : (int)left);
		if (rc < 0)
			rc = errno == EINTR ? -EINTR : -errno;
		else if (rc == 0 && left == 0)
			return -ETIME;
		else if (rc == 0)
			rc = -EINPROGRESS;
		else if (cancel_fd >= 0 && pfd[1].revents)
			return -ECANCELED;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &errlen) < 0)
			rc = -errno;
		else
			rc = -soerr;
	}
	if (rc == 0)
		rc = pe_net_set_nonblocking(fd, 0);
	return rc == -EPIPE ? -ECONNRESET : rc;
}

int pe_net_lookup(const char *host, const char *port, struct addrinfo **list,
                  char err[PE_NET_ERRLEN])
{
	return pe_net_lookup_family(host, port, AF_UNSPEC, list, err);
}

int pe_net_lookup_family(const char *host, const char *port, int family, struct addrinfo **list,
                         char err[PE_NET_ERRLEN])
{
	struct addrinfo hints;
	char why[SCOPE_WHY_SIZE];
	const char *reason;
	int rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = lookup_scoped(host, port, &hints, list, &reason, why);
	if (rc != 0) {
		char name[NAME_SHOWN_SIZE];

		set_err(err, "cannot resolve %s port %s%s: %s", shown_name(host, name), port,
		        family == AF_INET ? " to an IPv4 address" :
		        family == AF_INET6 ? " to an IPv6 address" : "", reason);
		return -EINVAL;
	}
	return 0;
}

const char *pe_net_format_host(const struct sockaddr *sa, socklen_t len, char out[NI_MAXHOST])
{
	if (getnameinfo(sa, len, out, NI_MAXHOST, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(out, NI_MAXHOST, "?");
	else
		v4compat_as_hex(sa, len, out, NI_MAXHOST);
	return shown_host(out, NI_MAXHOST);
}

const char *pe_net_address_hint(const struct sockaddr *sa, int rc, int binding)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	bool scoped = sa->sa_family == AF_INET6 && s6->sin6_scope_id != 0 &&
	              pe_net_scope_heeded(&s6->sin6_addr);

	if (rc == -EINVAL && sa->sa_family == AF_INET6 && s6->sin6_scope_id == 0 &&
	    pe_net_scope_heeded(&s6->sin6_addr))
		return " (a link-local address needs its interface, as in fe80::1%eth0)";
	/* An index that names no interface (fe80::1%99, which the resolver
	 * takes as it is): bind(2) says ENODEV, connect(2) ENETUNREACH, as
	 * though a route were missing. */
	if ((rc == -ENODEV || rc == -ENETUNREACH) && scoped) {
		char name[IF_NAMESIZE];

		if (!if_indextoname(s6->sin6_scope_id, name) && errno == ENXIO)
			return " (no interface of this host has that index)";
	}
	/* The address may well be this host's, on another link. */
	if (rc == -EADDRNOTAVAIL && binding && scoped)
		return " (not an address of that interface)";
	/* With IPv6 turned off, ::1 is gone as any IPv6 address is: the same
	 * errno, whose cause is a setting, named only where it is set. */
	if (rc == -EADDRNOTAVAIL && binding && sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) &&
	    pe_sysfile_number("/proc/sys/net/ipv6/conf/lo/disable_ipv6") == 1)
		return " (not an address of this host: IPv6 is turned off on its loopback, "
		       "net.ipv6.conf.lo.disable_ipv6=1)";
	/* Not for an IPv4-mapped address, which is IPv4's to have. */
	if (rc == -EADDRNOTAVAIL && binding && sa->sa_family == AF_INET6 &&
	    !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
	    pe_sysfile_number("/proc/sys/net/ipv6/conf/all/disable_ipv6") == 1 &&
	    !pe_net_ipv6_has_an_address())
		return " (not an address of this host: IPv6 is turned off, "
		       "net.ipv6.conf.all.disable_ipv6=1)";
	if (rc == -EADDRNOTAVAIL && binding)
		return " (not an address of this host)";
	return "";
}

/* Whether SA is a loopback address: 127.0.0.0/8, IPv4-mapped or not, or ::1. */
static bool is_loopback(const struct sockaddr *sa)
{
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >>
		        24) == 127;
	if (sa->sa_family != AF_INET6)
		return false;
	return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

const char *pe_net_source_hint(const struct sockaddr *source, const struct sockaddr *sa, int rc)
{
	socklen_t len = sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
	                sizeof(struct sockaddr_in6);
	int fd, unrouted = 0;

	if (rc != -EINVAL || !source || !is_loopback(source) || is_loopback(sa))
		return "";
	/* The same EINVAL for any source (a blackhole route) is the route's
	 * doing: a UDP connect, which sends nothing, from the address the
	 * system would pick tells. A check that cannot be made tells nothing. */
	fd = pe_net_socket(sa, SOCK_DGRAM | SOCK_CLOEXEC);
	if (fd >= 0) {
		unrouted = connect(fd, sa, len) < 0;
		close(fd);
	}
	return unrouted ? "" : " (a loopback source address reaches only this host)";
}

int pe_net_socket(const struct sockaddr *sa, int type)
{
	int zero = 0, fd = socket(sa->sa_family, type, 0), e;

	if (fd < 0)
		return -errno;
	/* An IPv4-mapped address (::ffff:a.b.c.d) is IPv4 on the wire, which
	 * an IPv6-only socket cannot carry: where net.ipv6.bindv6only=1 makes
	 * that the default, connect(2) to one says ENETUNREACH and bind(2)
	 * EINVAL. */
	if (sa->sa_family != AF_INET6 ||
	    !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr) ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) == 0)
		return fd;
	e = errno;
	close(fd);
	return -e;
}

int pe_net_bind_source(int fd, const struct sockaddr *sa, socklen_t len)
{
#ifdef IP_BIND_ADDRESS_NO_PORT
	int one = 1;

	/* The port is then chosen at connect(2), for the whole four-tuple, so
	 * that one port serves connections to different servers; without it
	 * (before Linux 4.2, or elsewhere) bind(2) takes a port of its own,
	 * which works too. */
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
	return bind(fd, sa, len) == 0 ? 0 : -errno;
}

/* connect(2) fails with EADDRNOTAVAIL both when no address of this host
 * reaches SA (::1 with IPv6 turned off) and when no local port is left for
 * it (the ephemeral range all taken, most of it in TIME_WAIT after a churn
 * run), which the errno text, "Cannot assign requested address", does not
 * tell apart. A UDP socket's connect picks the source address the same way,
 * from ports of its own: when it succeeds, the ports are what ran out; when
 * it finds no address, none is left. A probe that fails otherwise (no
 * descriptor left for its socket, as when the failed connect took the
 * last, or no UDP port) tells nothing. */
int pe_net_ports_ran_out(const struct sockaddr *sa, socklen_t len, const struct sockaddr *source,
                         socklen_t source_len)
{
	int fd = pe_net_socket(sa, SOCK_DGRAM | SOCK_CLOEXEC), rc;

	if (fd < 0)
		return fd;
	if ((!source || bind(fd, source, source_len) == 0) && connect(fd, sa, len) == 0)
		rc = 1;
	else
		rc = errno == EADDRNOTAVAIL || errno == ENETUNREACH ? 0 : -errno;
	close(fd);
	return rc;
}

int pe_net_connect_list(const struct addrinfo *list, unsigned long timeout_ms, int cancel_fd,
                        char err[PE_NET_ERRLEN])
{
	return pe_net_connect_list_from(list, NULL, 0, timeout_ms, cancel_fd, NULL, err);
}

int pe_net_connect_list_from(const struct addrinfo *list, const struct sockaddr *source,
                             socklen_t source_len, unsigned long timeout_ms, int cancel_fd,
                             const struct addrinfo **answered, char err[PE_NET_ERRLEN])
{
	const struct addrinfo *ai;
	char where[PE_NET_ADDRLEN], reason[PE_NET_ERRLEN], lead[NI_MAXHOST + 32] = "cannot connect to";
	int fd = -ECONNREFUSED, rc, ran_out;
	unsigned failures = 0, omitted = 0;

	if (source) {
		char from[NI_MAXHOST];

		snprintf(lead, sizeof lead, "cannot connect from %s to",
		         pe_net_format_host(source, source_len, from));
	}
	for (ai = list; ai; ai = ai->ai_next) {
		bool connecting = false;

		fd = pe_net_socket(ai->ai_addr, SOCK_STREAM | SOCK_CLOEXEC);
		rc = fd < 0 ? fd : 0;
		if (rc == 0 && source)
			rc = pe_net_bind_source(fd, source, source_len);
		if (rc == 0) {
			connecting = true;
			rc = connect_within(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms, cancel_fd);
		}
		if (answered && (rc == 0 || rc == -ECONNRESET))
			*answered = ai;
		if (rc == 0)
			break;
		if (fd >= 0)
			close(fd);
		pe_net_format(ai->ai_addr, ai->ai_addrlen, where);
		fd = rc;
		if (rc == -ECANCELED) {
			set_err(err, "connect to %s given up", where);
			break;
		}
		/* The server is there: another of its addresses is no answer. */
		if (rc == -ECONNRESET) {
			set_err(err, "%s reset the connection as soon as it was made", where);
			break;
		}
		ran_out = rc == -EADDRNOTAVAIL && connecting ?
		          pe_net_ports_ran_out(ai->ai_addr, ai->ai_addrlen, source, source_len) : -1;
		if (rc == -ETIME) {
			fd = -ETIMEDOUT;
			snprintf(reason, sizeof reason, "timed out after %.3f s",
			         (double)timeout_ms / 1000.0);
		} else if (ran_out > 0) {
			snprintf(reason, sizeof reason, "%s (the local ephemeral ports are exhausted, "
			         "most likely held in TIME_WAIT by connections closed in the last "
			         "minute: see net.ipv4.ip_local_port_range)", strerror(-rc));
		} else if (ran_out == 0) {
			/* Ports to spare: no source address could be had for it,
			 * as for ::1 with IPv6 turned off, which the errno text,
			 * "Cannot assign requested address", leaves to guess. */
			snprintf(reason, sizeof reason, "%s (%s reach it%s)", strerror(-rc),
			         source ? "the source address does not" : "no address of this host can",
			         ai->ai_family == AF_INET6 ?
			         ": is IPv6 turned off (net.ipv6.conf.*.disable_ipv6)?" : "");
		} else {
			snprintf(reason, sizeof reason, "%s%s%s", strerror(-rc),
			         pe_net_address_hint(ai->ai_addr, rc, 0),
			         connecting ? pe_net_source_hint(source, ai->ai_addr, rc) : "");
		}
		add_failure(err, &failures, &omitted, lead, where, reason);
	}
	if (fd < 0 && fd != -ECANCELED && fd != -ECONNRESET)
		end_failures(err, omitted);
	return fd;
}

int pe_net_connect_timeout(const char *host, const char *port, unsigned long timeout_ms,
                           char err[PE_NET_ERRLEN])
{
	struct addrinfo *list;
	int fd = pe_net_lookup(host, port, &list, err);

	if (fd < 0)
		return fd;
	fd = pe_net_connect_list(list, timeout_ms, -1, err);
	freeaddrinfo(list);
	return fd;
}

static struct timeval timeval_us(unsigned long long us)
{
	return (struct timeval){.tv_sec = (time_t)(us / 1000000),
	                        .tv_usec = (suseconds_t)(us % 1000000)};
}

int pe_net_set_timeouts_us(int fd, unsigned long long recv_us, unsigned long long send_us)
{
	struct timeval rtv = timeval_us(recv_us), stv = timeval_us(send_us);

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rtv, sizeof rtv) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &stv, sizeof stv) < 0)
		return -errno;
	return 0;
}

bool pe_net_gave_up(int err)
{
	return err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN;
}

int pe_net_set_keepalive(int fd, int idle_s, int interval_s, int count)
{
	const int one = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0)
		return -errno;
#if defined(TCP_KEEPIDLE) && defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
	if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) < 0)
		return -errno;
#else
	(void)idle_s;
	(void)interval_s;
	(void)count;
#endif
	return 0;
}

int pe_net_listen_queue(int fd, unsigned *waiting, unsigned *backlog)
{
#if defined(__linux__) && defined(TCP_INFO)
	struct tcp_info info;
	socklen_t len = sizeof info;

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
		return -errno;
	if (len < offsetof(struct tcp_info, tcpi_sacked) + sizeof info.tcpi_sacked)
		return -ENOSYS;
	if (waiting)
		*waiting = info.tcpi_unacked;
	if (backlog)
		*backlog = info.tcpi_sacked;
	return 0;
#else
	(void)fd;
	(void)waiting;
	(void)backlog;
	return -ENOSYS;
#endif
}

int pe_net_set_nonblocking(int fd, int nonblocking)
{
	int flags = fcntl(fd, F_GETFL);

	/* Unchecked, a failed F_GETFL would hand F_SETFL -1: every flag set,
	 * O_ASYNC (SIGIO) and O_APPEND among them. */
	if (flags < 0)
		return -errno;
	flags = nonblocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, flags) < 0 ? -errno : 0;
}

int pe_net_set_echo_options(int fd)
{
	const int one = 1;

	/* Echo is latency-bound ping-pong: never let Nagle hold a reply back. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
	    /* Otherwise recv(2) skips an urgent byte (telnet's Synch sends one)
	     * and it is lost without a trace. */
	    setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one) < 0)
		return -errno;
	return 0;
}
