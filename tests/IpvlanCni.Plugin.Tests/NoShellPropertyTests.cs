using System.Text.RegularExpressions;

namespace IpvlanCni.Plugin.Tests;

/// <summary>
/// A property of the product's source: no request data ever reaches a shell. Every child process is started from a
/// ProcessStartInfo with UseShellExecute = false and an ArgumentList (never the one-string Arguments a shell-like
/// parser splits), no shell is named anywhere, and the NAT rules go to iptables/nft as arguments or on stdin.
/// </summary>
public sealed partial class NoShellPropertyTests
{
    static string SourceRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(Path.Combine(dir.FullName, "src", "IpvlanCni.Plugin")))
                return Path.Combine(dir.FullName, "src");
        throw new DirectoryNotFoundException($"no src/IpvlanCni.Plugin above {AppContext.BaseDirectory}");
    }

    static readonly Dictionary<string, string> Sources = Directory
        .EnumerateFiles(SourceRoot(), "*.cs", SearchOption.AllDirectories)
        .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"))
        .ToDictionary(f => Path.GetRelativePath(SourceRoot(), f), File.ReadAllText);

    [GeneratedRegex(@"new\s+ProcessStartInfo\b|Process\.Start\s*\(\s*""|\.Arguments\s*=|UseShellExecute\s*=\s*true")]
    private static partial Regex ProcessUse();

    [GeneratedRegex(@"""(/bin/|/usr/bin/)?(sh|bash|dash|zsh|busybox)""|""-c""|/bin/sh\b")]
    private static partial Regex ShellName();

    [Fact]
    public void Sources_were_found() => Assert.Contains(Sources.Keys, k => k.EndsWith("Masquerade.cs", StringComparison.Ordinal));

    [Fact]
    public void Every_process_is_started_without_a_shell_and_with_an_argument_list()
    {
        var starters = Sources.Where(s => s.Value.Contains("ProcessStartInfo", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(starters);
        foreach (var (file, text) in starters)
        {
            foreach (Match use in ProcessUse().Matches(text))
            {
                if (use.Value.StartsWith("new", StringComparison.Ordinal))
                    continue;
                Assert.Fail($"{file}: '{use.Value}' (a command line as one string, or a shell)");
            }
            int starts = Regex.Matches(text, @"new\s+ProcessStartInfo\b").Count;
            int noShell = Regex.Matches(text, @"UseShellExecute\s*=\s*false").Count;
            Assert.True(starts == noShell, $"{file}: {starts} ProcessStartInfo, {noShell} with UseShellExecute = false");
        }
        // Process.Start(string, string) takes a command line: nowhere.
        foreach (var (file, text) in Sources)
            Assert.DoesNotMatch(@"Process\.Start\s*\(\s*[^)\s]+\s*,", text);
    }

    /// <summary>One spawner, with the deadline: no other file starts a process (or could forget to bound it).</summary>
    [Fact]
    public void Every_child_process_goes_through_the_one_helper_with_a_deadline()
    {
        var starters = Sources.Where(s => Regex.IsMatch(s.Value, @"new\s+ProcessStartInfo\b|new\s+Process\b|Process\.Start\(")).Select(s => s.Key).ToList();
        Assert.Equal([Path.Combine("IpvlanCni.Cni", "ChildProcess.cs")], starters);
        Assert.Contains("Kill(entireProcessTree: true)", Sources[Path.Combine("IpvlanCni.Cni", "ChildProcess.cs")]);
    }

    [Fact]
    public void No_shell_is_named_in_the_product()
    {
        foreach (var (file, text) in Sources)
            Assert.True(!ShellName().IsMatch(text), $"{file} names a shell: {ShellName().Match(text).Value}");
    }

    /// <summary>The NAT backend runs tools by name from fixed folders, data as list arguments or stdin.</summary>
    [Fact]
    public void Masquerade_passes_data_as_arguments_or_stdin()
    {
        string text = Sources.Single(s => s.Key.EndsWith("Masquerade.cs", StringComparison.Ordinal)).Value;
        string spawner = Sources.Single(s => s.Key.EndsWith("ChildProcess.cs", StringComparison.Ordinal)).Value;
        Assert.Contains("start.ArgumentList.Add(argument)", spawner);
        Assert.Contains("input.Feed(stdin.Span", spawner); // stdin bytes go down the pipe, never into a command line
        Assert.Contains("ChildProcess.Run(path, arguments,", text);
        // Every Tools.Run names a tool variable or literal and passes a list (a collection expression) as arguments.
        var calls = Regex.Matches(text, @"Tools\.Run\(([^,]+),\s*([^,]+)");
        Assert.NotEmpty(calls);
        foreach (Match call in calls)
        {
            Assert.Matches(@"^(tool|tool \+ ""-restore""|""nft""|iptables|ip6tables)$", call.Groups[1].Value.Trim());
            Assert.StartsWith("[", call.Groups[2].Value.Trim());
        }
    }
}
