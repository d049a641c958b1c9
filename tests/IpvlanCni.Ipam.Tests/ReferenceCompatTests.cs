using System.Diagnostics;
using System.Text;
using IpvlanCni.Cni;

namespace IpvlanCni.Ipam.Tests;

/// <summary>Ours and Debian's reference host-local (1.1.1) on one store: same files, same lock, each frees the other's.</summary>
public sealed class ReferenceCompatTests : IDisposable
{
    const string Reference = "/usr/lib/cni/host-local";
    readonly TempDir _dir = new();
    string NetDir => Path.Join(_dir.Path, "net1");

    public void Dispose() => _dir.Dispose();

    string Config(string ranges) => TestNet.Config(TestNet.HostLocal(_dir.Path, ranges));

    static (int Exit, string Stdout) RunReference(string command, string config, string id, string ifName = "eth0")
    {
        Assert.True(File.Exists(Reference), $"{Reference} is missing: the compatibility tests need Debian's containernetworking-plugins (run `make deps`)");
        var start = new ProcessStartInfo(Reference)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["CNI_COMMAND"] = command;
        start.Environment["CNI_CONTAINERID"] = id;
        start.Environment["CNI_NETNS"] = "/proc/self/ns/net";
        start.Environment["CNI_IFNAME"] = ifName;
        start.Environment["CNI_PATH"] = "/usr/lib/cni";
        using var p = Process.Start(start)!;
        p.StandardInput.Write(config);
        p.StandardInput.Close();
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        _ = stderr.Result;
        return (p.ExitCode, stdout);
    }

    static string RefAdd(string config, string id, string ifName = "eth0")
    {
        var (exit, stdout) = RunReference("ADD", config, id, ifName);
        Assert.True(exit == 0, $"reference ADD failed: {stdout}");
        var r = CniResultJson.Parse(Encoding.UTF8.GetBytes(stdout));
        return string.Join(",", r.Ips.Select(ip => IpMath.Format(ip.Address.Address)));
    }

    static void RefDel(string config, string id, string ifName = "eth0")
    {
        var (exit, stdout) = RunReference("DEL", config, id, ifName);
        Assert.True(exit == 0, $"reference DEL failed: {stdout}");
    }

    static string OurAdd(string config, string id, string ifName = "eth0")
    {
        var req = TestNet.Request(config, id, ifName);
        return string.Join(",", TestNet.Create(req).Allocate(req).Ips.Select(ip => IpMath.Format(ip.Address.Address)));
    }

    static void OurDel(string config, string id, string ifName = "eth0")
    {
        var req = TestNet.Request(config, id, ifName, CniCommand.Del);
        TestNet.Create(req).Release(req);
    }

    [Fact]
    public void Interleaved_allocations_continue_one_round_robin_with_byte_identical_files()
    {
        var c = Config("""[[{"subnet":"10.1.1.0/24"}],[{"subnet":"fd00::/120"}]]""");
        Assert.Equal("10.1.1.2,fd00::2", RefAdd(c, "ref-a"));
        Assert.Equal("10.1.1.3,fd00::3", OurAdd(c, "our-b"));
        Assert.Equal("10.1.1.4,fd00::4", RefAdd(c, "ref-c"));
        Assert.Equal("10.1.1.5,fd00::5", OurAdd(c, "our-d"));

        foreach (var (ip, id) in new[] { ("10.1.1.2", "ref-a"), ("10.1.1.3", "our-b"), ("fd00::4", "ref-c"), ("fd00::5", "our-d") })
            Assert.Equal(Encoding.UTF8.GetBytes($"{id}\r\neth0"), File.ReadAllBytes(Path.Join(NetDir, ip)));
        Assert.Equal("fd00::5", File.ReadAllText(Path.Join(NetDir, "last_reserved_ip.1")));
        Assert.Equal(["10.1.1.2", "10.1.1.3", "10.1.1.4", "10.1.1.5", "fd00::2", "fd00::3", "fd00::4", "fd00::5", "last_reserved_ip.0", "last_reserved_ip.1", "lock"],
            Directory.GetFileSystemEntries(NetDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Each_releases_the_others_reservations()
    {
        var c = Config("""[[{"subnet":"10.1.1.0/24"}]]""");
        RefAdd(c, "ref-a");
        OurAdd(c, "our-b");
        RefAdd(c, "shared", "eth0");
        OurAdd(c, "shared", "eth1");
        OurDel(c, "ref-a");
        RefDel(c, "our-b");
        OurDel(c, "shared", "eth0"); // made by the reference
        RefDel(c, "shared", "eth1"); // made by us
        Assert.Equal(["last_reserved_ip.0", "lock"], Directory.GetFileSystemEntries(NetDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Duplicate_detection_sees_the_others_reservation()
    {
        var c = Config("""[[{"subnet":"10.1.1.0/24"}]]""");
        RefAdd(c, "x");
        Assert.Contains("duplicate allocation is not allowed", Assert.Throws<CniException>(() => OurAdd(c, "x")).Message);
        OurAdd(c, "y");
        var (exit, stdout) = RunReference("ADD", c, "y");
        Assert.NotEqual(0, exit);
        Assert.Contains("duplicate allocation is not allowed", stdout);
    }

    [Fact]
    public void Concurrent_processes_of_both_plugins_never_collide()
    {
        var c = Config("""[[{"subnet":"10.2.0.0/24"}]]""");
        var reference = Enumerable.Range(0, 12).Select(i => Task.Run(() => RefAdd(c, $"ref{i}"))).ToArray();
        var ours = Enumerable.Range(0, 12).Select(i => Task.Run(() => OurAdd(c, $"our{i}"))).ToArray();
        Task.WaitAll([.. reference, .. ours]);
        var all = reference.Concat(ours).Select(t => t.Result).ToList();
        Assert.Equal(24, all.Distinct().Count());
        Assert.Equal(24, Directory.GetFiles(NetDir).Count(f => IpMath.TryParse(Path.GetFileName(f), out _)));
    }
}
