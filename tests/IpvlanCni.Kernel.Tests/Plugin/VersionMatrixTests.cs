using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>Every command through the published binary, in every CNI version a runtime may speak.</summary>
public class VersionMatrixTests : KernelTest
{
    public static TheoryData<string> Versions => [.. PluginKit.Versions];

    [Theory]
    [MemberData(nameof(Versions))]
    public void Add_check_status_gc_del_answer_in_the_configured_version(string version)
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("matrix", "10.10.0.0/24", cniVersion: version);
        var pod = node.AddPod();

        var added = cni.Add(config, pod, "c1").Succeeded();
        var result = added.Json;
        Assert.Equal(version, result.GetProperty("cniVersion").GetString());
        var iface = Assert.Single(result.GetProperty("interfaces").EnumerateArray());
        Assert.Equal("eth0", iface.GetProperty("name").GetString());
        Assert.Equal(pod.Path, iface.GetProperty("sandbox").GetString());
        var link = pod.Client.GetLink("eth0");
        Assert.Equal(link.MacAddress.ToString().ToLowerInvariant(), iface.GetProperty("mac").GetString()!.Replace(":", ""));
        var ip = Assert.Single(result.GetProperty("ips").EnumerateArray());
        Assert.Equal(0, ip.GetProperty("interface").GetInt32());
        Assert.Equal("10.10.0.1", ip.GetProperty("gateway").GetString());
        // 0.3.x and 0.4.0 carry ips[].version; 1.0.0 dropped it.
        bool old = version.StartsWith("0.", StringComparison.Ordinal);
        Assert.Equal(old, ip.TryGetProperty("version", out var ipVersion));
        if (old)
            Assert.Equal("4", ipVersion.GetString());
        var address = added.Addresses.Single();
        Assert.Contains(pod.Client.ListAddresses(AddressFamily.InterNetwork, link.Index), a => a.Prefix.Equals(address));
        Assert.True(cni.IsReserved("matrix", address.Address));

        var check = cni.Check(config, pod, "c1", added);
        if (CniVersionAtLeast(version, "0.4.0"))
            check.Succeeded();
        else
            Assert.Contains("CHECK", check.FailedWith(1));

        var status = cni.Status(config);
        var gc = cni.Gc(config, ("c1", "eth0"));
        if (version == "1.1.0")
        {
            status.Succeeded();
            gc.Succeeded();
            Assert.True(cni.IsReserved("matrix", address.Address), "GC released an attachment it was told to keep");
        }
        else
        {
            Assert.Contains("STATUS", status.FailedWith(1));
            Assert.Contains("GC", gc.FailedWith(1));
        }

        var versionAnswer = cni.Run("VERSION", new JsonObject { ["cniVersion"] = version }, "", "", "").Succeeded().Json;
        Assert.Equal(version, versionAnswer.GetProperty("cniVersion").GetString());
        var supported = versionAnswer.GetProperty("supportedVersions").EnumerateArray().Select(v => v.GetString()).ToList();
        Assert.All(PluginKit.Versions, v => Assert.Contains(v, supported));

        cni.Del(config, pod, "c1").Succeeded();
        Assert.Equal("", cni.Del(config, pod, "c1").Succeeded().StdOut);
        Assert.Null(pod.Client.TryGetLink("eth0"));
        Assert.False(cni.IsReserved("matrix", address.Address));
        Assert.False(cni.HasRecord("matrix", "c1"));
    }

    [Fact]
    public void Version_without_stdin_answers_the_latest_versionAnswerand_every_supported_one()
    {
        using var node = new TestNode();
        var env = new Dictionary<string, string> { ["CNI_COMMAND"] = "VERSION" };
        var answer = new PluginRunner(node).RunRaw(env, "").Succeeded().Json;
        Assert.Equal("1.1.0", answer.GetProperty("cniVersion").GetString());
        var supported = answer.GetProperty("supportedVersions").EnumerateArray().Select(v => v.GetString()).ToList();
        Assert.All(PluginKit.Versions, v => Assert.Contains(v, supported));
    }

    static bool CniVersionAtLeast(string version, string minimum) => Version.Parse(version) >= Version.Parse(minimum);
}
