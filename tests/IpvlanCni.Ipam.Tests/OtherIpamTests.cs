using System.Text;
using CsCheck;
using IpvlanCni.Cni;

namespace IpvlanCni.Ipam.Tests;

public sealed class OtherIpamTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Static_returns_config_addresses_and_cni_args_override()
    {
        var c = TestNet.Config("""{"type":"static","addresses":[{"address":"10.1.1.5/24","gateway":"10.1.1.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.0.0.53"]}}""");
        var req = TestNet.Request(c);
        var r = TestNet.Create(req).Allocate(req);
        Assert.Equal("10.1.1.5/24", r.Ips.Single().Address.ToString());
        Assert.Equal("10.1.1.1", r.Ips[0].Gateway!.ToString());
        Assert.Equal(["10.0.0.53"], r.Dns.Nameservers);
        TestNet.Create(req).Release(req);

        var withArgs = TestNet.Request(c, args: [new("IP", "10.2.0.7/16"), new("GATEWAY", "10.2.0.1")]);
        Assert.Equal(["10.1.1.5/24", "10.2.0.7/16"], TestNet.Create(withArgs).Allocate(withArgs).Ips.Select(i => i.Address.ToString()));
        var rt = TestNet.Request(TestNet.Config("""{"type":"static","addresses":[{"address":"10.1.1.5/24"}]}""", extra: ""","runtimeConfig":{"ips":["10.3.0.3/24"]}"""));
        Assert.Equal("10.3.0.3/24", TestNet.Create(rt).Allocate(rt).Ips.Single().Address.ToString());

        var check = TestNet.Request(c, command: CniCommand.Check, prevResult: r with { Ips = [r.Ips[0] with { Gateway = System.Net.IPAddress.Parse("10.1.1.9") }] });
        Assert.Contains("Failed to match addr 10.1.1.5", Assert.Throws<CniException>(() => TestNet.Create(check).Check(check)).Message);
    }

    [Fact]
    public void Other_types_run_from_cni_path_and_errors_propagate()
    {
        // The reference host-local under another name: it ignores ipam.type, so it stands in for any IPAM plugin.
        string bin = Path.Join(_dir.Path, "bin");
        Directory.CreateDirectory(bin);
        File.CreateSymbolicLink(Path.Join(bin, "other-ipam"), "/usr/lib/cni/host-local");
        var c = TestNet.Config($$"""{"type":"other-ipam","dataDir":"{{_dir.Path}}","ranges":[[{"subnet":"10.1.1.0/30"}]]}""");
        CniRequest Req(string id, CniCommand cmd) => TestNet.Request(c, id, command: cmd) with
        {
            PluginPaths = ["/nonexistent", bin],
            Environment = new Dictionary<string, string> { ["CNI_CONTAINERID"] = id, ["CNI_IFNAME"] = "eth0", ["CNI_NETNS"] = "/proc/self/ns/net", ["CNI_PATH"] = bin },
        };
        var add = Req("d1", CniCommand.Add);
        Assert.IsType<DelegatingIpam>(TestNet.Create(add));
        Assert.Equal("10.1.1.2/30", TestNet.Create(add).Allocate(add).Ips.Single().Address.ToString());
        Assert.True(File.Exists(Path.Join(_dir.Path, "net1", "10.1.1.2")));
        var full = Req("d2", CniCommand.Add);
        var e = Assert.Throws<CniException>(() => TestNet.Create(full).Allocate(full));
        Assert.Contains("no IP addresses available", e.Message);
        var del = Req("d1", CniCommand.Del);
        TestNet.Create(del).Release(del);
        Assert.False(File.Exists(Path.Join(_dir.Path, "net1", "10.1.1.2")));

        var missing = Req("d3", CniCommand.Add) with { PluginPaths = ["/nonexistent"] };
        var notFound = Assert.Throws<CniException>(() => TestNet.Create(missing).Allocate(missing));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, notFound.Code);
        Assert.Contains("failed to find plugin \"other-ipam\"", notFound.Message);
    }

    /// <summary>Whatever the range and however full the store, a handed-out address is in [start, end] and never the
    /// network, the broadcast or the gateway.</summary>
    [Fact]
    public void Allocation_stays_inside_the_range_property()
    {
        var gen =
            from prefix in Gen.Int[24, 29]
            from startOff in Gen.Int[0, 6]
            from len in Gen.Int[0, 8]
            from gwOff in Gen.Int[0, 7]
            from taken in Gen.Int[0, 255].Array[0, 10]
            from last in Gen.Int[0, 255]
            from count in Gen.Int[1, 10]
            select (prefix, startOff, len, gwOff, taken, last, count);
        int run = 0;
        gen.Sample(t =>
        {
            int size = 1 << (32 - t.prefix);
            int start = Math.Min(1 + t.startOff, size - 2), end = Math.Min(start + t.len, size - 2);
            string dir = Path.Join(_dir.Path, $"p{Interlocked.Increment(ref run)}");
            string net = Path.Join(dir, "net1");
            Directory.CreateDirectory(net);
            foreach (var x in t.taken)
                File.WriteAllText(Path.Join(net, $"10.0.0.{x % size}"), "other\r\neth0");
            File.WriteAllText(Path.Join(net, "last_reserved_ip.0"), $"10.0.0.{t.last % size}");
            string gw = $"10.0.0.{t.gwOff % size}";
            var c = TestNet.Config(TestNet.HostLocal(dir, $$"""[[{"subnet":"10.0.0.0/{{t.prefix}}","rangeStart":"10.0.0.{{start}}","rangeEnd":"10.0.0.{{end}}","gateway":"{{gw}}"}]]"""));
            var handedOut = new HashSet<int>();
            for (int i = 0; i < t.count; i++)
            {
                var req = TestNet.Request(c, $"c{i}");
                try
                {
                    var ip = TestNet.Create(req).Allocate(req).Ips.Single().Address.Address.GetAddressBytes()[3];
                    if (ip < start || ip > end || ip == 0 || ip == size - 1 || $"10.0.0.{ip}" == gw || !handedOut.Add(ip) ||
                        t.taken.Any(x => x % size == ip))
                        return false;
                }
                catch (CniException e) when (e.Code == CniErrorCode.AddressesExhausted)
                {
                    // Exhausted only when every candidate is really taken.
                    int free = Enumerable.Range(start, end - start + 1).Count(a => $"10.0.0.{a}" != gw && !handedOut.Contains(a) && !t.taken.Any(x => x % size == a));
                    return free == 0;
                }
            }
            return true;
        }, iter: 150, threads: 1);
    }
}
