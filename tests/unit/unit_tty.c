/* Unit tests of the terminals' pure parts: what a device is as a terminal, the
 * controlling terminal in /proc stat, the session rule, the checks of a terminal
 * entry read from an image, and which queued input can be put back as it was. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "cryo.h"
#include "files.h"
#include "unit.h"

static void test_classify(void)
{
	static const struct {
		uint32_t maj, min;
		enum tty_class c;
		uint32_t index;
	} cases[] = {
		{ 136, 0, TTY_PTY_SLAVE, 0 },	{ 136, 255, TTY_PTY_SLAVE, 255 },
		{ 137, 1, TTY_PTY_SLAVE, 257 },	{ 143, 255, TTY_PTY_SLAVE, 2047 },
		{ 5, 2, TTY_PTY_MASTER, 0 },	{ 5, 0, TTY_CTTY, 0 },
		{ 5, 1, TTY_CONSOLE, 0 },	{ 4, 1, TTY_OTHER, 0 },
		{ 4, 64, TTY_OTHER, 0 },	{ 1, 3, TTY_NOT, 0 },
		{ 135, 0, TTY_NOT, 0 },		{ 144, 0, TTY_NOT, 0 },
		{ 5, 3, TTY_NOT, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t idx = 12345;
		enum tty_class c = tty_classify(cases[i].maj, cases[i].min, &idx);

		unit_case();
		CHECK(c == cases[i].c, "%u:%u is class %d, not %d", cases[i].maj, cases[i].min, c,
		      cases[i].c);
		if (c == TTY_PTY_SLAVE)
			CHECK(idx == cases[i].index, "%u:%u is pty %u, not %u", cases[i].maj,
			      cases[i].min, idx, cases[i].index);
	}
}

/* tty_nr packs major and minor as the kernel's new_encode_dev. */
static void test_decode(void)
{
	static const struct { uint32_t nr, maj, min; } cases[] = {
		{ 0, 0, 0 }, { 34816, 136, 0 }, { 34820, 136, 4 }, { 0x8801, 136, 1 },
		{ ((0x12345 & ~0xffu) << 12) | (136 << 8) | 0x45, 136, 0x12345 }, { 0x401, 4, 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t maj, min;

		unit_case();
		tty_decode_nr(cases[i].nr, &maj, &min);
		CHECK(maj == cases[i].maj && min == cases[i].min, "0x%x read as %u:%u",
		      cases[i].nr, maj, min);
	}
}

static void test_sessions(void)
{
	/* A terminal server (own session, no terminal), two panes leading sessions on
	 * their ptys, a job in one of them. */
	const struct tty_node good[] = {
		{ 10, 10, 0 }, { 11, 11, 0x8800 }, { 12, 11, 0x8800 }, { 13, 13, 0x8801 },
	};
	/* A job run in the user's terminal (its session led outside): the root's. */
	const struct tty_node job[] = { { 20, 5, 0x8803 }, { 21, 5, 0x8803 } };
	const struct tty_node lost[] = { { 10, 10, 0 }, { 11, 11, 0x8800 }, { 12, 11, 0 } };
	const struct tty_node other[] = { { 20, 5, 0x8803 }, { 21, 5, 0x8804 } };
	const struct tty_node leader_later[] = { { 11, 11, 0 }, { 12, 11, 0x8800 } };

	unit_case();
	CHECK(!tty_check_sessions(good, 4), "a server and its panes refused: %s", err_text());
	unit_case();
	CHECK(!tty_check_sessions(job, 2), "a shell job refused: %s", err_text());
	unit_case();
	CHECK(tty_check_sessions(lost, 3) && err_has("process 12: its controlling terminal (device 0x0,") &&
	      err_has("its session leader"), "a process without its leader's terminal: %s",
	      err_text());
	unit_case();
	CHECK(tty_check_sessions(other, 2) && err_has("process 21: its controlling terminal (device 0x8804,") &&
	      err_has("the root"), "another terminal than the root's: %s", err_text());
	unit_case();
	CHECK(tty_check_sessions(leader_later, 2) && err_has("process 12"),
	      "a terminal its leader does not have: %s", err_text());
}

/* One pty pair and a shell terminal; each case breaks one thing. */
static void test_check(void)
{
	uint8_t termios[44] = { 0 }, winsize[8] = { 0 };
	TtyFile m, s, sh;
	FileEntry e[3], *ptrs[3] = { &e[0], &e[1], &e[2] };
	FileTable ft = FILE_TABLE__INIT;

	for (int bad = 0; bad <= 9; bad++) {
		tty_file__init(&m);
		tty_file__init(&s);
		tty_file__init(&sh);
		m.index = s.index = 3;
		m.master = 1;
		m.path = "/dev/ptmx";
		m.has_termios = m.has_winsize = 1;
		m.termios = (ProtobufCBinaryData){ sizeof(termios), termios };
		m.winsize = (ProtobufCBinaryData){ sizeof(winsize), winsize };
		s.path = "/dev/pts/3";
		sh.has_shell = sh.shell = 1;
		for (int i = 0; i < 3; i++) {
			file_entry__init(&e[i]);
			e[i].id = i + 1;
			e[i].kind = FILE_KIND__FILE_TTY;
			e[i].flags = O_RDWR;
		}
		e[0].tty = &m;
		e[1].tty = &s;
		e[2].tty = &sh;
		if (bad == 1)
			m.termios.len = 36;
		if (bad == 2)
			m.winsize.len = 4;
		if (bad == 3)
			m.path = "/etc/passwd";
		if (bad == 4)
			s.index = 1 << 20;
		if (bad == 5)
			e[1].flags = O_RDWR | O_CREAT;
		if (bad == 6)
			e[2].tty = NULL;
		if (bad == 7 || bad == 8) {	/* too much queued; queued on a slave */
			TtyFile *t = bad == 7 ? &m : &s;

			t->has_to_slave = 1;
			t->to_slave.len = bad == 7 ? (1u << 20) + 1 : 1;
		}
		if (bad == 9) {
			sh.has_to_master = 1;
			sh.to_master.len = 1;
		}
		ft.files = ptrs;
		ft.n_files = 3;
		unit_case();
		if (!bad)
			CHECK(!files_check_table(&ft), "a sound table refused: %s", err_text());
		else
			CHECK(files_check_table(&ft) && err_has("terminal file"),
			      "case %d accepted or wrong error: %s", bad, err_text());
	}
}

static struct cr_termios2 canon_tios(void)
{
	struct cr_termios2 t = { 0 };

	t.c_iflag = ICRNL | IXON;
	t.c_lflag = ICANON | ECHO | ISIG | IEXTEN;
	t.c_cc[VEOF] = 4;
	t.c_cc[VSTART] = 0x11;
	t.c_cc[VSTOP] = 0x13;
	t.c_cc[VEOL] = '@';
	return t;
}

static void test_input(void)
{
	static const struct {
		const char *line;
		bool canon, faithful;
	} cases[] = {
		{ "in-line\n", true, true },	{ "no end", true, true },
		{ "", true, true },		{ "at@", true, true },
		{ "a\nb\n", true, false },	{ "a@b\n", true, false },
		{ "a\004\n", true, false },	{ "a\023\n", true, true },
		{ "a\nb\004", false, true },	{ "a\021", false, true },
	};
	struct cr_termios2 t;
	size_t n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = canon_tios();
		if (!cases[i].canon)
			t.c_lflag &= ~ICANON;
		unit_case();
		CHECK(pty_input_faithful(&t, (const uint8_t *)cases[i].line,
					 strlen(cases[i].line)) == cases[i].faithful,
		      "case %zu ('%s') judged wrongly", i, cases[i].line);
	}
	t = canon_tios();
	n = pty_input_visible(&t, (const uint8_t *)"ab\004\004cd\n", 7);
	unit_case();
	CHECK(n == 5, "canonical: %zu bytes visible, not 5", n);
	n = pty_input_visible(&t, (const uint8_t *)"ab\ncd", 5);
	unit_case();
	CHECK(n == 3, "canonical, unfinished line: %zu bytes visible, not 3", n);
	t.c_lflag &= ~ICANON;
	n = pty_input_visible(&t, (const uint8_t *)"ab\004\004cd\n", 7);
	unit_case();
	CHECK(n == 7, "raw: %zu bytes visible, not 7", n);
}

int main(void)
{
	test_input();
	test_classify();
	test_decode();
	test_sessions();
	test_check();
	return unit_done("unit_tty");
}
