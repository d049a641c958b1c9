using System.Diagnostics;
using System.Text;

namespace IpvlanCni.Cni.Tests;

/// <summary>The one way the plugin runs a program: stdin in, stdout and stderr out, a deadline, and an answer that is
/// complete when the program itself exits (not when every descendant has closed its stdout).</summary>
public class ChildProcessTests
{
    static readonly Dictionary<string, string> Path = new() { ["PATH"] = "/usr/bin:/bin" };

    [Fact]
    public void Stdin_reaches_the_program_and_its_output_comes_back_whole_past_a_pipe_buffer()
    {
        var input = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 40_000).Select(i => $"line {i}\n")));
        var outcome = ChildProcess.Run("/bin/cat", [], Path, input, TimeSpan.FromSeconds(20));
        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal(input, outcome.Output);
    }

    [Fact]
    public void Exit_status_and_stderr_are_reported()
    {
        var outcome = ChildProcess.Run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"], Path, default, TimeSpan.FromSeconds(20));
        Assert.Equal(3, outcome.ExitCode);
        Assert.Equal("out\n", Encoding.ASCII.GetString(outcome.Output));
        Assert.Equal("err", outcome.Error);
    }

    /// <summary>The reference dhcp plugin's daemon, or any delegate that forks: its child keeps stdout open.</summary>
    [Fact]
    public void A_program_that_leaves_a_child_holding_stdout_has_answered_when_it_exits()
    {
        var clock = Stopwatch.StartNew();
        var outcome = ChildProcess.Run("/bin/sh", ["-c", "echo '{\"answer\":1}'; sleep 30 & exit 0"], Path, default, TimeSpan.FromSeconds(10));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal("{\"answer\":1}\n", Encoding.ASCII.GetString(outcome.Output));
    }

    [Fact]
    public void A_program_that_never_answers_is_killed_at_its_deadline()
    {
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<ChildProcessTimeoutException>(() => ChildProcess.Run("/bin/sleep", ["600"], Path, default, TimeSpan.FromSeconds(1)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Contains("did not finish within 1 s", e.Message);
    }

    [Fact]
    public void A_program_that_does_not_read_stdin_still_answers()
    {
        var input = new byte[1 << 20];
        var outcome = ChildProcess.Run("/bin/sh", ["-c", "echo early; exit 0"], Path, input, TimeSpan.FromSeconds(10));
        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal("early\n", Encoding.ASCII.GetString(outcome.Output));
    }
}
