namespace IpvlanCni.Explain.Tests;

/// <summary>The subcommand's arguments: bad ones exit 2 naming the argument; a saved snapshot replays.</summary>
public sealed class CommandTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = ExplainCommand.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    static string Snapshot(string name) => Path.Combine(AppContext.BaseDirectory, "Snapshots", $"{name}.json");

    [Theory]
    [InlineData("--to", "10.0.0.1")]
    [InlineData("--from", "node")]
    [InlineData("--from", "node", "--to", "10.0.0.01")]
    [InlineData("--from", "node", "--to", "10.0.0.0/24")]
    [InlineData("--from", "node", "--to", "10.0.0.1", "--bogus")]
    [InlineData("--from", "node", "--to", "10.0.0.1", "--state-dir", "relative")]
    public void Bad_arguments_exit_2_and_say_why(params string[] args)
    {
        var (code, stdout, stderr) = Run(args);
        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith("explain: ", stderr);
    }

    [Fact]
    public void A_replayed_snapshot_answers_with_text_or_json_and_the_verdict_as_exit_code()
    {
        var text = Run("--snapshot", Snapshot("l3-host"), "--from", "/run/netns/demo-p10", "--to", "192.168.3.1");
        Assert.Equal(0, text.Code);
        Assert.Contains("verdict: reachable", text.Out);
        var json = Run("--snapshot", Snapshot("l3-plain"), "--from", "/run/netns/demo-p7", "--to", "192.168.3.1", "--json");
        Assert.Equal(1, json.Code);
        Assert.Contains("\"verdict\": \"unreachable\"", json.Out);
    }

    [Fact]
    public void A_namespace_the_snapshot_does_not_hold_is_refused()
    {
        var (code, _, stderr) = Run("--snapshot", Snapshot("l3-host"), "--from", "/run/netns/nope", "--to", "192.168.3.1");
        Assert.Equal(2, code);
        Assert.Contains("no such namespace", stderr);
    }
}

/// <summary>The published plugin hands `explain` to its companion executable (make publish builds both).</summary>
public sealed class PublishedCommandTests
{
    static string Plugin()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "artifacts", "cni", "bin", "ipvlan-cni");
            if (File.Exists(candidate))
                return candidate;
        }
        throw new FileNotFoundException("artifacts/cni/bin/ipvlan-cni not found: run make publish first");
    }

    [Fact]
    public void Ipvlan_cni_explain_runs_the_companion_with_the_arguments_after_explain()
    {
        var info = new System.Diagnostics.ProcessStartInfo(Plugin()) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { "explain", "--snapshot", Path.Combine(AppContext.BaseDirectory, "Snapshots", "l3-host.json"),
                     "--from", "/run/netns/demo-p10", "--to", "192.168.3.1", "--json" })
            info.ArgumentList.Add(arg);
        using var process = System.Diagnostics.Process.Start(info)!;
        string stdout = process.StandardOutput.ReadToEnd();
        string stderr = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {stderr}");
        Assert.Contains("\"verdict\": \"reachable\"", stdout);
    }
}
