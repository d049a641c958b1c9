using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace IpvlanCni.Install.Tests;

/// <summary>
/// `ipvlan-cni install` and `uninstall` run from the published executable, as an init container or a
/// configuration tool runs them, into throw-away folders.
/// </summary>
public class InstallCommandTests : IDisposable
{
    const UnixFileMode Mode0755 = (UnixFileMode)0b111_101_101, Mode0644 = (UnixFileMode)0b110_100_100;

    readonly TempFolder _temp = new();
    readonly string _bin, _conf;
    readonly string _conflist;

    public InstallCommandTests()
    {
        _bin = _temp.Sub("bin");
        _conf = _temp.Sub("net.d");
        _conflist = _temp.File("10-business.conflist",
            File.ReadAllText(Path.Join(Repo.Root, "deploy", "examples", "l2-host-access.conflist")));
    }

    public void Dispose() => _temp.Dispose();

    static Outcome Ipvlan(params string[] args) => Command.Run(Repo.Plugin, args);

    Outcome Install(params string[] extra) => Ipvlan(["install", "--bin-dir", _bin, "--conf-dir", _conf, .. extra]);

    /// <summary>inode, modification and change time: equal when nothing wrote or renamed over the name.</summary>
    static string Identity(string path) => Command.Succeed("stat", "-c", "%i %y %z", path).Stdout.Trim();

    [Fact]
    public void Install_copies_the_executable_links_the_IPAM_name_and_writes_the_conflist()
    {
        var outcome = Install("--conflist", _conflist);

        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        string installed = Path.Join(_bin, "ipvlan-cni");
        foreach (var (name, published) in Repo.Executables)
        {
            Assert.Equal(File.ReadAllBytes(published), File.ReadAllBytes(Path.Join(_bin, name)));
            Assert.Equal(Mode0755, File.GetUnixFileMode(Path.Join(_bin, name)));
        }
        Assert.Equal("ipvlan-cni", new FileInfo(Path.Join(_bin, "ipvlan-cni-ipam")).LinkTarget);
        string conflist = Path.Join(_conf, "10-business.conflist");
        Assert.Equal(File.ReadAllBytes(_conflist), File.ReadAllBytes(conflist));
        Assert.Equal(Mode0644, File.GetUnixFileMode(conflist));
        // Nothing else: no temporary left behind in either folder.
        Assert.Equal(["ipvlan-cni", "ipvlan-cni-agent", "ipvlan-cni-explain", "ipvlan-cni-install", "ipvlan-cni-ipam"],
            Directory.GetFileSystemEntries(_bin).Select(Path.GetFileName).Order());
        Assert.Equal(["10-business.conflist"], Directory.GetFileSystemEntries(_conf).Select(Path.GetFileName));
        Assert.Contains($"{installed}: installed", outcome.Stdout);

        // The installed names answer as the plugin does, and the installed plugin finds its companions.
        Assert.StartsWith("Usage: ipvlan-cni explain", Command.Run(installed, "explain", "--help").Stdout);
        foreach (var name in new[] { "ipvlan-cni", "ipvlan-cni-ipam" })
        {
            var version = Command.Run(Path.Join(_bin, name), [], new Dictionary<string, string> { ["CNI_COMMAND"] = "VERSION" });
            Assert.True(version.ExitCode == 0, version.ToString());
            Assert.Contains("\"supportedVersions\"", version.Stdout);
        }
    }

    [Fact]
    public void Install_without_its_companions_beside_it_is_refused_and_writes_nothing()
    {
        string lone = _temp.Sub("lone");
        foreach (var (name, published) in Repo.Executables.Where(e => e.Name is "ipvlan-cni" or "ipvlan-cni-install"))
            File.Copy(published, Path.Join(lone, name));

        var outcome = Command.Run(Path.Join(lone, "ipvlan-cni"), "install", "--bin-dir", _bin, "--conf-dir", _conf);

        Assert.Equal(1, outcome.ExitCode);
        Assert.StartsWith($"ipvlan-cni install: {Path.Join(lone, "ipvlan-cni-agent")}: cannot read it", outcome.Stderr);
        Assert.Empty(Directory.GetFileSystemEntries(_bin));
    }

    [Fact]
    public void Modes_do_not_depend_on_the_callers_umask()
    {
        var outcome = Command.Run("sh", "-c", "umask 077 && exec \"$@\"", "sh", Repo.Plugin,
            "install", "--bin-dir", _bin, "--conf-dir", _conf, "--conflist", _conflist);

        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        Assert.Equal(Mode0755, File.GetUnixFileMode(Path.Join(_bin, "ipvlan-cni")));
        Assert.Equal(Mode0644, File.GetUnixFileMode(Path.Join(_conf, "10-business.conflist")));
    }

    [Fact]
    public void A_second_install_changes_nothing()
    {
        Assert.Equal(0, Install("--conflist", _conflist).ExitCode);
        string[] paths = [.. Repo.Executables.Select(e => Path.Join(_bin, e.Name)), Path.Join(_bin, "ipvlan-cni-ipam"), Path.Join(_conf, "10-business.conflist")];
        var before = paths.Select(Identity).ToArray();
        Thread.Sleep(20); // a rewrite would show in the nanosecond timestamps

        var again = Install("--conflist", _conflist);

        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(before, paths.Select(Identity).ToArray());
        Assert.Equal(6, again.Stdout.Split('\n').Count(line => line.EndsWith(": current")));
    }

    [Fact]
    public void An_older_executable_is_replaced_by_rename_and_a_holder_of_the_old_keeps_it()
    {
        string target = Path.Join(_bin, "ipvlan-cni");
        byte[] old = [.. File.ReadAllBytes(Repo.Plugin), .. "an older build"u8];
        File.WriteAllBytes(target, old);
        File.CreateSymbolicLink(Path.Join(_bin, "ipvlan-cni-ipam"), "/somewhere/else");
        string oldInode = Identity(target).Split(' ')[0];
        using var running = File.OpenRead(target); // like a process still executing the old file

        var outcome = Install();

        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        Assert.Contains($"{target}: replaced", outcome.Stdout);
        Assert.NotEqual(oldInode, Identity(target).Split(' ')[0]);
        Assert.Equal(File.ReadAllBytes(Repo.Plugin), File.ReadAllBytes(target));
        Assert.Equal("ipvlan-cni", new FileInfo(Path.Join(_bin, "ipvlan-cni-ipam")).LinkTarget);
        var kept = new MemoryStream();
        running.CopyTo(kept);
        Assert.Equal(old, kept.ToArray());
    }

    [Fact]
    public void A_crashed_installs_temporary_is_replaced_not_followed()
    {
        // A symlink planted under the temporary name must not redirect the write.
        string victim = _temp.File("victim", "untouched");
        File.CreateSymbolicLink(Path.Join(_bin, ".ipvlan-cni.install"), victim);

        var outcome = Install();

        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        Assert.Equal("untouched", File.ReadAllText(victim));
        Assert.False(File.Exists(Path.Join(_bin, ".ipvlan-cni.install")));
    }

    [Fact]
    public void A_missing_folder_is_refused_by_name_with_exit_3_and_nothing_written()
    {
        string missing = Path.Join(_temp.Path, "no-such-dir");

        var bin = Ipvlan("install", "--bin-dir", missing, "--conf-dir", _conf, "--conflist", _conflist);
        var conf = Ipvlan("install", "--bin-dir", _bin, "--conf-dir", missing, "--conflist", _conflist);
        var file = Ipvlan("install", "--bin-dir", _conflist, "--conf-dir", _conf);

        Assert.Equal(3, bin.ExitCode);
        Assert.Equal($"ipvlan-cni install: --bin-dir {missing}: no such folder (create it first; install never creates the runtime's folders)\n", bin.Stderr);
        Assert.Equal(3, conf.ExitCode);
        Assert.Contains($"--conf-dir {missing}: no such folder", conf.Stderr);
        Assert.Equal(3, file.ExitCode);
        Assert.Contains($"--bin-dir {_conflist}: not a folder", file.Stderr);
        Assert.Empty(Directory.GetFileSystemEntries(_bin));
        Assert.Empty(Directory.GetFileSystemEntries(_conf));
        Assert.False(Directory.Exists(missing));
    }

    [Fact]
    public void A_folder_this_process_cannot_write_is_refused_with_exit_4()
    {
        // As an unprivileged user (the tests run as root, whom permission bits do not stop).
        string readable = _temp.Sub("exe");
        string plugin = Path.Join(readable, "ipvlan-cni");
        Repo.CopyExecutables(readable);
        File.SetUnixFileMode(_temp.Path, Mode0755);

        var outcome = Command.Run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            plugin, "install", "--bin-dir", _bin, "--conf-dir", _conf);

        Assert.Equal(4, outcome.ExitCode);
        Assert.Equal($"ipvlan-cni install: --bin-dir {_bin}: not writable by this process (EACCES (Permission denied))\n", outcome.Stderr);
        Assert.Empty(Directory.GetFileSystemEntries(_bin));
    }

    [Theory]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","plugins":[{"type":"ipvlan-cni","mode":"l4"}]}""", "plugins[0]: mode: unknown value \"l4\" (expected l2, l3, l3s)")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","plugins":[{"type":"bridge"}]}""", "plugins: no plugin of type \"ipvlan-cni\"")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","plugins":[]}""", "plugins: a conflist needs at least one plugin")]
    [InlineData("""{"cniVersion":"1.1.0","plugins":[{"type":"ipvlan-cni"}]}""", "name is required")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","plugins":[{"type":"ipvlan-cni","ipam":{"type":"host-local","subnet":"10.1.0.0/33"}}]}""", "plugins[0]: ")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","plugins":[{"type":"ipvlan-cni","master":"a/b"}]}""", "plugins[0]: master: ")]
    [InlineData("""{"cniVersion":"9.9.9","name":"n","plugins":[{"type":"ipvlan-cni"}]}""", "plugins[0]: ")]
    [InlineData("""{"cniVersion":"1.1.0", """, "conflist is not valid JSON")]
    public void An_invalid_conflist_is_refused_with_exit_5_before_anything_is_written(string content, string message)
    {
        string bad = _temp.File("20-bad.conflist", content);

        var outcome = Install("--conflist", bad);

        Assert.Equal(5, outcome.ExitCode);
        Assert.StartsWith($"ipvlan-cni install: --conflist {bad}: ", outcome.Stderr);
        Assert.Contains(message, outcome.Stderr);
        Assert.EndsWith("; nothing was installed\n", outcome.Stderr);
        Assert.Empty(Directory.GetFileSystemEntries(_bin));
        Assert.Empty(Directory.GetFileSystemEntries(_conf));
    }

    [Theory]
    [InlineData(new[] { "--bin-dir", "/tmp" }, "--conf-dir is required")]
    [InlineData(new[] { "--bin-dir", "/tmp", "--conf-dir", "/tmp", "--bin-dir", "/tmp" }, "--bin-dir is given twice")]
    [InlineData(new[] { "--bin-dir", "/tmp", "--conf-dir", "/tmp", "--force" }, "unknown option '--force' (expected --bin-dir, --conf-dir, --conflist)")]
    [InlineData(new[] { "--bin-dir", "/tmp", "--conf-dir" }, "--conf-dir needs a value")]
    [InlineData(new[] { "--bin-dir=", "--conf-dir", "/tmp" }, "--bin-dir needs a value, not an empty string")]
    [InlineData(new[] { "/tmp" }, "unexpected argument '/tmp' (options start with --)")]
    [InlineData(new[] { "--bin-dir", "/tmp", "--conf-dir", "/tmp", "--conflist", "/tmp/x.conf" }, "--conflist 'x.conf': the name must end in .conflist")]
    public void A_bad_command_line_is_refused_with_exit_2(string[] args, string message)
    {
        var outcome = Ipvlan(["install", .. args]);

        Assert.Equal(2, outcome.ExitCode);
        Assert.StartsWith($"ipvlan-cni install: {message}", outcome.Stderr);
        Assert.EndsWith("Try 'ipvlan-cni install --help'.\n", outcome.Stderr);
        Assert.Empty(outcome.Stdout);
    }

    [Fact]
    public void Uninstall_removes_what_install_wrote()
    {
        Assert.Equal(0, Install("--conflist", _conflist).ExitCode);

        var outcome = Ipvlan("uninstall", "--bin-dir", _bin, "--conf-dir", _conf, "--conflist", "10-business.conflist");

        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        Assert.Empty(Directory.GetFileSystemEntries(_bin));
        Assert.Empty(Directory.GetFileSystemEntries(_conf));
        Assert.Equal(6, outcome.Stdout.Split('\n').Count(line => line.EndsWith(": removed")));

        var again = Ipvlan("uninstall", "--bin-dir", _bin, "--conf-dir", _conf, "--conflist", "10-business.conflist");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(6, again.Stdout.Split('\n').Count(line => line.EndsWith(": not present")));
    }

    [Fact]
    public void Uninstall_refuses_a_conflist_that_is_not_ours_and_changes_nothing()
    {
        Assert.Equal(0, Install().ExitCode);
        string foreign = Path.Join(_conf, "10-bridge.conflist");
        File.WriteAllText(foreign, """{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"bridge"}]}""");

        var outcome = Ipvlan("uninstall", "--bin-dir", _bin, "--conf-dir", _conf, "--conflist", "10-bridge.conflist");

        Assert.Equal(5, outcome.ExitCode);
        Assert.Contains("not a conflist with a plugin of type \"ipvlan-cni\"; not removed, nothing was changed", outcome.Stderr);
        Assert.True(File.Exists(foreign));
        Assert.True(File.Exists(Path.Join(_bin, "ipvlan-cni")));
        Assert.Equal(2, Ipvlan("uninstall", "--bin-dir", _bin, "--conf-dir", _conf, "--conflist", "../x.conflist").ExitCode);
    }

    /// <summary>
    /// The kubelet's view of an upgrade: the executable is run over and over by its name while install replaces it,
    /// back and forth between two builds. Every run must start (no ETXTBSY, no half-written file) and answer.
    /// </summary>
    [Fact]
    public void Runs_of_the_installed_name_all_succeed_while_installs_replace_it()
    {
        // Two builds, each a folder as published (install copies ipvlan-cni and its companions from its own).
        string currentBuild = _temp.Sub("current"), olderBuild = _temp.Sub("older");
        Repo.CopyExecutables(currentBuild);
        Repo.CopyExecutables(olderBuild);
        string current = Path.Join(currentBuild, "ipvlan-cni"), older = Path.Join(olderBuild, "ipvlan-cni");
        File.AppendAllText(older, new string('\0', 4096)); // another build's bytes
        Assert.Equal(0, Command.Run(older, "install", "--bin-dir", _bin, "--conf-dir", _conf).ExitCode);

        using var stop = new CancellationTokenSource();
        var failures = new List<string>();
        int runs = 0, runsDuringInstalls = 0;
        bool installing = false;
        var runners = Enumerable.Range(0, 2).Select(i => new Thread(() =>
        {
            string name = Path.Join(_bin, i == 0 ? "ipvlan-cni" : "ipvlan-cni-ipam");
            while (!stop.IsCancellationRequested)
            {
                bool during = Volatile.Read(ref installing);
                Outcome run;
                try
                {
                    run = Command.Run(name, [], new Dictionary<string, string> { ["CNI_COMMAND"] = "VERSION" }, TimeSpan.FromSeconds(30));
                }
                catch (Exception e)
                {
                    lock (failures) failures.Add($"{name}: {e.GetType().Name}: {e.Message}");
                    continue;
                }
                Interlocked.Increment(ref runs);
                if (during)
                    Interlocked.Increment(ref runsDuringInstalls);
                if (run.ExitCode != 0 || !run.Stdout.Contains("\"supportedVersions\""))
                    lock (failures) failures.Add($"{name}: {run}");
            }
        })).ToList();
        runners.ForEach(t => t.Start());

        var clock = Stopwatch.StartNew();
        int installs = 0;
        while (installs < 12)
        {
            Volatile.Write(ref installing, true);
            var outcome = Command.Run(installs % 2 == 0 ? current : older, "install", "--bin-dir", _bin, "--conf-dir", _conf);
            Volatile.Write(ref installing, false);
            Assert.True(outcome.ExitCode == 0, outcome.ToString());
            Assert.Contains(": replaced", outcome.Stdout);
            installs++;
        }
        stop.Cancel();
        runners.ForEach(t => t.Join());

        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(runsDuringInstalls >= 12, $"only {runsDuringInstalls} of {runs} runs overlapped the {installs} installs in {clock.Elapsed}");
        Assert.Equal(File.ReadAllBytes(older), File.ReadAllBytes(Path.Join(_bin, "ipvlan-cni")));
    }
}
