/* The demo program: counts, keeping its state in memory, and logs each step. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	unsigned long long n = 0, sum = 0;

	for (;;) {
		struct timespec ts = { 0, 200 * 1000 * 1000 };

		sum += n * n;
		printf("pid %d: step %llu, sum of squares %llu\n", getpid(), n++, sum);
		fflush(stdout);
		nanosleep(&ts, NULL);
	}
}
