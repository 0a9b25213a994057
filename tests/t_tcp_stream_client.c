/* The streaming test with the client as the dumped process (t_tcp_stream.c). */
#define STREAM_CLIENT 1
#include "t_tcp_stream.c"
