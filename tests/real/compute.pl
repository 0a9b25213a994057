# A perl process that computes and logs to stdout (a file) while it is dumped and
# restored; at the end it checks its result and its own log from inside.
use strict;
use warnings;
use Time::HiRes qw(sleep);

my $N = 250;
my $M = 1000000007;
$SIG{USR1} = sub { };
$| = 1;

sub step { my ($s, $i) = @_; return ($s * 31 + ($i * $i * 7 + 3 * $i) % 1000003) % $M; }

print "READY\n";
my $state = 0;
my @table;
for my $i (0 .. $N - 1) {
    $state = step($state, $i);
    $table[$i] = $state;
    print "$i $state\n";
    sleep(0.01);
}
my $expect = 0;
$expect = step($expect, $_) for 0 .. $N - 1;
my @errors;
push @errors, "final state $state != $expect" if $state != $expect;
open(my $fh, '<', readlink("/proc/self/fd/1")) or die "cannot read own log: $!";
my @lines = grep { /^\d/ } map { chomp; $_ } <$fh>;
push @errors, "log has " . scalar(@lines) . " lines, expected $N" if @lines != $N;
for my $k (0 .. $#lines) {
    my ($i, $v) = split / /, $lines[$k];
    if ($i != $k || $v != $table[$k]) { push @errors, "log line $k is '$lines[$k]'"; last; }
}
print @errors ? "FAIL: " . join("; ", @errors) . "\n" : "PASS\n";
exit(@errors ? 1 : 0);
