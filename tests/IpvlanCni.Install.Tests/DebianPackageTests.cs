using System.Text.RegularExpressions;

namespace IpvlanCni.Install.Tests;

/// <summary>The package installed with dpkg into a throw-away root, once for the class (scripts run with DPKG_ROOT).</summary>
public sealed class InstalledPackage : IDisposable
{
    readonly TempFolder _temp = new();

    public string Root { get; }
    public Outcome Install { get; }

    public InstalledPackage()
    {
        Root = _temp.Sub("root");
        Directory.CreateDirectory(Path.Join(Root, "var", "lib", "dpkg", "info"));
        Directory.CreateDirectory(Path.Join(Root, "var", "lib", "dpkg", "updates"));
        File.WriteAllText(Path.Join(Root, "var", "lib", "dpkg", "status"), "");
        Install = Dpkg("-i", Repo.Deb);
    }

    public Outcome Dpkg(params string[] args) =>
        Command.Run("dpkg", ["--root=" + Root, "--force-script-chrootless", "--log=/dev/null", .. args]);

    public string PathOf(string absolute) => Path.Join(Root, absolute);

    public void Dispose() => _temp.Dispose();
}

public class DebianPackageTests(InstalledPackage package) : IClassFixture<InstalledPackage>
{
    static Outcome Run(string file, params string[] args) => Command.Run(file, args);

    [Fact]
    public void Dpkg_installs_it_into_a_throwaway_root()
    {
        Assert.True(package.Install.ExitCode == 0, package.Install.ToString());
        var status = package.Dpkg("-s", "ipvlan-cni");
        Assert.Contains("Status: install ok installed", status.Stdout);
        Assert.Contains($"Version: {Repo.Version}\n", status.Stdout);
    }

    [Fact]
    public void The_installed_executable_answers_VERSION_under_both_names()
    {
        foreach (var name in new[] { "/usr/lib/cni/ipvlan-cni", "/usr/lib/cni/ipvlan-cni-ipam", "/usr/sbin/ipvlan-cni" })
        {
            var outcome = Command.Run(package.PathOf(name), [], new Dictionary<string, string> { ["CNI_COMMAND"] = "VERSION" });
            Assert.True(outcome.ExitCode == 0, $"{name}: {outcome}");
            Assert.StartsWith("{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[", outcome.Stdout);
        }
        Assert.Equal("ipvlan-cni", new FileInfo(package.PathOf("/usr/lib/cni/ipvlan-cni-ipam")).LinkTarget);
        Assert.Equal($"ipvlan-cni {Repo.Version}\n", Run(package.PathOf("/usr/lib/cni/ipvlan-cni"), "--version").Stdout);
        Assert.Equal(File.ReadAllBytes(Repo.Plugin), File.ReadAllBytes(package.PathOf("/usr/lib/cni/ipvlan-cni")));
        // The subcommands that run as executables of their own answer through the installed name.
        foreach (var subcommand in new[] { "agent", "explain", "install", "uninstall" })
            Assert.StartsWith($"Usage: ipvlan-cni {subcommand}", Run(package.PathOf("/usr/sbin/ipvlan-cni"), subcommand, "--help").Stdout);
    }

    [Fact]
    public void The_agent_unit_is_shipped_valid_and_not_enabled()
    {
        string unit = package.PathOf("/lib/systemd/system/ipvlan-cni-agent.service");
        string text = File.ReadAllText(unit);
        Assert.Contains("ExecStart=/usr/lib/cni/ipvlan-cni agent\n", text);
        Assert.Contains("Restart=on-failure\n", text);
        Assert.Contains("RuntimeDirectory=ipvlan-cni\n", text);
        Assert.Contains("CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_SYS_ADMIN CAP_SYS_PTRACE\n", text);
        // Not enabled: no wants link anywhere under /etc/systemd.
        Assert.False(Directory.Exists(package.PathOf("/etc/systemd/system")) &&
            Directory.EnumerateFileSystemEntries(package.PathOf("/etc/systemd/system"), "ipvlan-cni-agent.service", SearchOption.AllDirectories).Any());

        // systemd's own parser, in a copy of the root that has the system's targets the unit refers to.
        using var temp = new TempFolder();
        string root = temp.Sub("root");
        Command.Succeed("cp", "-a", package.Root + "/.", root);
        Command.Succeed("cp", "-rn", "/lib/systemd/system/.", Path.Join(root, "lib", "systemd", "system"));
        var verify = Run("systemd-analyze", "verify", "--man=no", "--root=" + root, "/lib/systemd/system/ipvlan-cni-agent.service");
        Assert.True(verify.ExitCode == 0 && verify.Stderr.Length == 0, verify.ToString());
    }

    [Fact]
    public void Every_subcommand_has_a_manual_page_and_the_documents_are_there()
    {
        var help = Run(Repo.Plugin, "--help").Stdout;
        var subcommands = Regex.Matches(help, @"^  ([a-z][a-z-]*)  ", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToList();
        Assert.Contains("install", subcommands);
        foreach (var page in subcommands.Select(s => $"ipvlan-cni-{s}.8.gz").Append("ipvlan-cni.8.gz"))
        {
            string path = package.PathOf($"/usr/share/man/man8/{page}");
            Assert.True(File.Exists(path), $"{page} is missing");
            var text = Command.Succeed("zcat", path).Stdout;
            Assert.Contains(".SH NAME\n", text);
        }
        string doc = package.PathOf("/usr/share/doc/ipvlan-cni");
        Assert.True(File.Exists(Path.Join(doc, "copyright")));
        Assert.StartsWith($"ipvlan-cni ({Repo.Version}) ", Command.Succeed("zcat", Path.Join(doc, "changelog.gz")).Stdout);
        var examples = Directory.GetFiles(Path.Join(Repo.Root, "deploy", "examples"), "*.conflist").Select(Path.GetFileName).Order();
        Assert.Equal(examples, Directory.GetFiles(Path.Join(doc, "examples")).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void Lintian_finds_no_errors()
    {
        var outcome = Command.Run("lintian", ["--fail-on", "error", Repo.Deb], timeout: TimeSpan.FromMinutes(5));

        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        Assert.DoesNotContain("\nE: ", "\n" + outcome.Stdout);
    }
}

/// <summary>Removal and purge from a root of its own, so the other tests keep theirs.</summary>
public class DebianPackageRemovalTests
{
    [Fact]
    public void Purge_leaves_nothing_of_the_package()
    {
        using var package = new InstalledPackage();
        Assert.True(package.Install.ExitCode == 0, package.Install.ToString());

        var purge = package.Dpkg("--purge", "ipvlan-cni");

        Assert.True(purge.ExitCode == 0, purge.ToString());
        var left = Directory.EnumerateFileSystemEntries(package.Root, "*", SearchOption.AllDirectories)
            .Select(p => p[package.Root.Length..])
            .Where(p => !p.StartsWith("/var/lib/dpkg") && p is not ("/var" or "/var/lib"))
            .ToList();
        Assert.Empty(left);
    }
}
