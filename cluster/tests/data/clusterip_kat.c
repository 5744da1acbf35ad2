/*
 * Known-answer generator for tandem-cluster's segment hash.
 *
 * An independent C model of the Linux (>= 4.1) jhash helpers as
 * include/linux/jhash.h defines them (lookup3 final mix, JHASH_INITVAL
 * 0xdeadbeef plus the word count shifted left by two), used the way
 * CLUSTERIP's clusterip_hashfn uses them in "sourceip" mode:
 *
 *   hash    = jhash_1word(ntohl(iph->saddr), hash_initval = 0)
 *   segment = (((u64)hash * total_nodes) >> 32) + 1
 *
 * plus Tandem's IPv6 rule: jhash2 over the four big-endian 32-bit words of
 * the address, initval 0 (jhash2 of one word equals jhash_1word, checked
 * below).
 *
 * Build and run by hand; paste the output into cluster/tests/segment_kat.rs:
 *   gcc -std=c99 -O2 -Wall -Wextra -o /tmp/clusterip_kat clusterip_kat.c && /tmp/clusterip_kat
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t rotl(uint32_t w, unsigned s)
{
	return (w << s) | (w >> (32 - s));
}

/* lookup3's final(): the last mixing step, result in c. */
static void final3(uint32_t *a, uint32_t *b, uint32_t *c)
{
	*c ^= *b; *c -= rotl(*b, 14);
	*a ^= *c; *a -= rotl(*c, 11);
	*b ^= *a; *b -= rotl(*a, 25);
	*c ^= *b; *c -= rotl(*b, 16);
	*a ^= *c; *a -= rotl(*c, 4);
	*b ^= *a; *b -= rotl(*a, 14);
	*c ^= *b; *c -= rotl(*b, 24);
}

/* lookup3's mix(): between blocks of three words. */
static void mix3(uint32_t *a, uint32_t *b, uint32_t *c)
{
	*a -= *c; *a ^= rotl(*c, 4);  *c += *b;
	*b -= *a; *b ^= rotl(*a, 6);  *a += *c;
	*c -= *b; *c ^= rotl(*b, 8);  *b += *a;
	*a -= *c; *a ^= rotl(*c, 16); *c += *b;
	*b -= *a; *b ^= rotl(*a, 19); *a += *c;
	*c -= *b; *c ^= rotl(*b, 4);  *b += *a;
}

#define INITVAL 0xdeadbeefu

/* jhash_1word(a, initval) = __jhash_nwords(a, 0, 0, initval + INITVAL + (1 << 2)) */
static uint32_t one_word(uint32_t w, uint32_t initval)
{
	uint32_t seed = initval + INITVAL + (1u << 2);
	uint32_t a = w + seed, b = seed, c = seed;
	final3(&a, &b, &c);
	return c;
}

/* jhash2(k, n, initval) */
static uint32_t words(const uint32_t *k, uint32_t n, uint32_t initval)
{
	uint32_t a, b, c;
	a = b = c = INITVAL + (n << 2) + initval;
	while (n > 3) {
		a += k[0]; b += k[1]; c += k[2];
		mix3(&a, &b, &c);
		n -= 3; k += 3;
	}
	if (n == 0)
		return c;
	if (n == 3) c += k[2];
	if (n >= 2) b += k[1];
	a += k[0];
	final3(&a, &b, &c);
	return c;
}

static unsigned segment(uint32_t hash, unsigned count)
{
	return (unsigned)(((uint64_t)hash * count) >> 32) + 1;
}

static const unsigned counts[] = { 1, 2, 3, 4, 16, 64 };
#define NCOUNTS (sizeof(counts) / sizeof(counts[0]))

static void row(const char *text, uint32_t hash)
{
	printf("    (\"%s\", 0x%08x, [", text, hash);
	for (unsigned i = 0; i < NCOUNTS; i++)
		printf("%s%u", i ? ", " : "", segment(hash, counts[i]));
	printf("]),\n");
}

int main(void)
{
	static const uint8_t v4[][4] = {
		{ 192, 0, 2, 10 }, { 10, 0, 0, 1 }, { 0, 0, 0, 0 }, { 255, 255, 255, 255 },
		{ 192, 168, 0, 1 }, { 198, 51, 100, 7 }, { 203, 0, 113, 200 }, { 172, 16, 1, 2 },
		{ 127, 0, 0, 1 }, { 1, 2, 3, 4 },
	};
	static const uint8_t v6[][16] = {
		{ 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01 },
		{ 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02 },
		{ 0x20, 0x01, 0x0d, 0xb8, 0x85, 0xa3, 0, 0, 0, 0, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x34 },
		{ 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55 },
		{ 0 },
		{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
	};
	static const char *v6_text[] = {
		"2001:db8::1", "2001:db8::2", "2001:db8:85a3::8a2e:370:7334",
		"fe80::211:22ff:fe33:4455", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	};

	printf("// counts: ");
	for (unsigned i = 0; i < NCOUNTS; i++)
		printf("%s%u", i ? ", " : "", counts[i]);
	printf("\n// IPv4: (address, jhash_1word(ntohl(saddr), 0), segments)\n");
	for (unsigned i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
		char text[16];
		uint32_t w = (uint32_t)v4[i][0] << 24 | (uint32_t)v4[i][1] << 16 |
			     (uint32_t)v4[i][2] << 8 | v4[i][3];
		if (one_word(w, 0) != words(&w, 1, 0)) {
			fprintf(stderr, "jhash2 of one word differs from jhash_1word\n");
			return EXIT_FAILURE;
		}
		snprintf(text, sizeof(text), "%u.%u.%u.%u", v4[i][0], v4[i][1], v4[i][2], v4[i][3]);
		row(text, one_word(w, 0));
	}
	printf("// IPv6: (address, jhash2(four big-endian words, 4, 0), segments)\n");
	for (unsigned i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
		uint32_t k[4];
		for (unsigned j = 0; j < 4; j++)
			k[j] = (uint32_t)v6[i][4 * j] << 24 | (uint32_t)v6[i][4 * j + 1] << 16 |
			       (uint32_t)v6[i][4 * j + 2] << 8 | v6[i][4 * j + 3];
		row(v6_text[i], words(k, 4, 0));
	}
	return EXIT_SUCCESS;
}
