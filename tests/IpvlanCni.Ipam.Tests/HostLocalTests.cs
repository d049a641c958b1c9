using System.Diagnostics;
using System.Net;
using IpvlanCni.Cni;

namespace IpvlanCni.Ipam.Tests;

public sealed class HostLocalTests : IDisposable
{
    readonly TempDir _dir = new();
    string NetDir => Path.Join(_dir.Path, "net1");

    public void Dispose() => _dir.Dispose();

    string Config(string ranges, string extra = "", string top = "") => TestNet.Config(TestNet.HostLocal(_dir.Path, ranges, extra), extra: top);

    CniResult Add(string config, string id = "c1", string ifName = "eth0", IReadOnlyList<KeyValuePair<string, string>>? args = null)
    {
        var req = TestNet.Request(config, id, ifName, args: args);
        return TestNet.Create(req).Allocate(req);
    }

    void Del(string config, string id = "c1", string ifName = "eth0")
    {
        var req = TestNet.Request(config, id, ifName, CniCommand.Del);
        TestNet.Create(req).Release(req);
    }

    static string Addr(CniResult r, int i = 0) => IpMath.Format(r.Ips[i].Address.Address);

    const string Small = """[[{"subnet":"10.1.1.0/29"}]]"""; // .1 gateway, .2-.6 allocatable, .7 broadcast

    [Fact]
    public void Allocates_in_order_skipping_the_gateway_and_writes_the_reference_files()
    {
        var c = Config(Small);
        var r = Add(c);
        Assert.Equal("10.1.1.2/29", r.Ips[0].Address.ToString());
        Assert.Equal("10.1.1.1", r.Ips[0].Gateway!.ToString());
        Assert.Null(r.Ips[0].Interface);
        Assert.Equal("c1\r\neth0", File.ReadAllText(Path.Join(NetDir, "10.1.1.2")));
        Assert.Equal("10.1.1.2", File.ReadAllText(Path.Join(NetDir, "last_reserved_ip.0")));
        Assert.Equal("10.1.1.3", Addr(Add(c, "c2")));
    }

    [Fact]
    public void Round_robin_continues_after_the_last_reserved_and_wraps()
    {
        var c = Config(Small);
        Directory.CreateDirectory(NetDir);
        File.WriteAllText(Path.Join(NetDir, "last_reserved_ip.0"), "10.1.1.5");
        Assert.Equal("10.1.1.6", Addr(Add(c, "a")));
        Assert.Equal("10.1.1.2", Addr(Add(c, "b"))); // wraps past the broadcast and the gateway
        Del(c, "a");
        Assert.Equal("10.1.1.3", Addr(Add(c, "d"))); // .6 was freed but round robin goes on
    }

    [Fact]
    public void Exhaustion_is_code_101_naming_network_and_range()
    {
        var c = Config(Small);
        var seen = Enumerable.Range(0, 5).Select(i => Addr(Add(c, $"c{i}"))).ToList();
        Assert.Equal(["10.1.1.2", "10.1.1.3", "10.1.1.4", "10.1.1.5", "10.1.1.6"], seen); // never .0, .1, .7
        var e = Assert.Throws<CniException>(() => Add(c, "full"));
        Assert.Equal(CniErrorCode.AddressesExhausted, e.Code);
        Assert.Equal("network \"net1\": failed to allocate for range 0: no IP addresses available in range set: 10.1.1.1-10.1.1.6", e.Message);
    }

    [Fact]
    public void Several_ranges_in_a_set_are_one_pool()
    {
        var c = Config("""[[{"subnet":"10.1.1.0/30"},{"subnet":"10.1.2.0/30"}]]""");
        Assert.Equal(["10.1.1.2", "10.1.2.2"], new[] { "a", "b" }.Select(id => Addr(Add(c, id))));
        Assert.Equal(CniErrorCode.AddressesExhausted, Assert.Throws<CniException>(() => Add(c, "x")).Code);
    }

    [Fact]
    public void Dual_stack_gets_one_address_per_range_set()
    {
        var c = Config("""[[{"subnet":"10.1.1.0/24"}],[{"subnet":"fd00:0:0:0:0:0:0:0/120","gateway":"fd00::fe"}]]""");
        var r = Add(c);
        Assert.Equal(["10.1.1.2/24", "fd00::1/120"], r.Ips.Select(ip => ip.Address.ToString()));
        Assert.Equal("fd00::fe", r.Ips[1].Gateway!.ToString());
        Assert.True(File.Exists(Path.Join(NetDir, "fd00::1")));
        Assert.Equal("fd00::1", File.ReadAllText(Path.Join(NetDir, "last_reserved_ip.1")));
    }

    [Fact]
    public void Requested_ips_are_reserved_exactly_or_fail()
    {
        var c = Config("""[[{"subnet":"10.1.1.0/24"}],[{"subnet":"fd00::/120"}]]""");
        var r = Add(c, args: [new("IP", "10.1.1.77,fd00::77")]);
        Assert.Equal(["10.1.1.77", "fd00::77"], r.Ips.Select(ip => IpMath.Format(ip.Address.Address)));

        var taken = Assert.Throws<CniException>(() => Add(c, "c2", args: [new("IP", "10.1.1.77")]));
        Assert.Contains("requested IP address 10.1.1.77 is not available", taken.Message);
        Assert.DoesNotContain(Directory.GetFiles(NetDir), f => File.ReadAllText(f).StartsWith("c2"));

        var outside = Assert.Throws<CniException>(() => Add(c, "c3", args: [new("IP", "10.9.9.9")]));
        Assert.Contains("failed to allocate all requested IPs: 10.9.9.9", outside.Message);
        Assert.DoesNotContain(Directory.GetFiles(NetDir), f => File.ReadAllText(f).StartsWith("c3"));

        Assert.Contains("subnet's gateway", Assert.Throws<CniException>(() => Add(c, "c4", args: [new("IP", "10.1.1.1")])).Message);

        var viaConfig = Config("""[[{"subnet":"10.1.1.0/24"}]]""", top: ""","runtimeConfig":{"ips":["10.1.1.88/24"]}""");
        Assert.Equal("10.1.1.88", Addr(Add(viaConfig, "c5")));
    }

    [Fact]
    public void A_second_add_for_the_same_attachment_is_refused_and_keeps_the_first()
    {
        var c = Config(Small);
        Add(c);
        var e = Assert.Throws<CniException>(() => Add(c));
        Assert.Contains("10.1.1.2 has been allocated to c1, duplicate allocation is not allowed", e.Message);
        Assert.True(File.Exists(Path.Join(NetDir, "10.1.1.2")));
        Assert.Equal("10.1.1.3", Addr(Add(c, "c1", "eth1"))); // another interface of the same container is fine
    }

    [Fact]
    public void Release_removes_only_this_attachment_and_is_idempotent()
    {
        var c = Config(Small);
        Add(c, "a", "eth0");
        Add(c, "a", "eth1");
        Add(c, "b", "eth0");
        Del(c, "a", "eth0");
        Del(c, "a", "eth0");
        Del(c, "never", "eth0");
        Assert.Equal(["10.1.1.3", "10.1.1.4"], Reserved());
    }

    [Fact]
    public void Release_matches_old_format_files_by_container_id()
    {
        var c = Config(Small);
        Directory.CreateDirectory(NetDir);
        File.WriteAllText(Path.Join(NetDir, "10.1.1.5"), "old\n");
        Del(c, "old", "eth0");
        Assert.Empty(Reserved());
    }

    [Fact]
    public void Check_finds_the_reservation_or_fails()
    {
        var c = Config(Small);
        var r = Add(c);
        var ok = TestNet.Request(c, command: CniCommand.Check, prevResult: r);
        TestNet.Create(ok).Check(ok);
        var other = TestNet.Request(c, "nobody", command: CniCommand.Check);
        Assert.Equal(CniErrorCode.UnknownContainer, Assert.Throws<CniException>(() => TestNet.Create(other).Check(other)).Code);
        File.Delete(Path.Join(NetDir, "10.1.1.2"));
        File.WriteAllText(Path.Join(NetDir, "10.1.1.3"), "c1\r\neth0");
        Assert.Contains("10.1.1.2 from prevResult is not reserved", Assert.Throws<CniException>(() => TestNet.Create(ok).Check(ok)).Message);
    }

    [Fact]
    public void Gc_keeps_only_valid_attachments_and_tolerates_garbage()
    {
        var c = Config(Small);
        Add(c, "keep", "eth0");
        Add(c, "drop", "eth0");
        Add(c, "keep", "eth1");
        File.WriteAllText(Path.Join(NetDir, "10.1.1.5"), "");          // crash before any content
        File.WriteAllBytes(Path.Join(NetDir, "10.1.1.6"), [0xff, 0, 0x80]); // garbage
        File.WriteAllText(Path.Join(NetDir, ".ipvlan-cni-tmp.1.x"), "keep\r\neth0");
        var req = TestNet.Request(c, "", "", CniCommand.Gc);
        TestNet.Create(req).GarbageCollect(req, [new GcAttachment("keep", "eth0")]);
        Assert.Equal(["10.1.1.2"], Reserved());
        Assert.False(File.Exists(Path.Join(NetDir, ".ipvlan-cni-tmp.1.x")));
        Assert.True(File.Exists(Path.Join(NetDir, "last_reserved_ip.0")));
    }

    [Fact]
    public void Truncated_files_do_not_break_release_or_allocation()
    {
        var c = Config(Small);
        Directory.CreateDirectory(NetDir);
        File.WriteAllText(Path.Join(NetDir, "10.1.1.2"), "c1\r");
        File.WriteAllText(Path.Join(NetDir, "last_reserved_ip.0"), "10.1.");
        Assert.Equal("10.1.1.3", Addr(Add(c, "c2")));
        Del(c, "c2");
        Del(c, "c1"); // "c1\r" trims to the old format "c1"
        Assert.Empty(Reserved());
    }

    [Fact]
    public void Symlinks_in_the_store_are_neither_followed_nor_overwritten()
    {
        var c = Config(Small);
        Directory.CreateDirectory(NetDir);
        string victim = Path.Join(_dir.Path, "victim");
        File.WriteAllText(victim, "c1\r\neth0");
        File.CreateSymbolicLink(Path.Join(NetDir, "10.1.1.2"), victim);      // a planted reservation
        File.CreateSymbolicLink(Path.Join(NetDir, "last_reserved_ip.0"), victim);
        File.CreateSymbolicLink(Path.Join(NetDir, "10.1.1.3"), Path.Join(_dir.Path, "missing"));
        Assert.Equal("10.1.1.4", Addr(Add(c, "c2"))); // .2 and .3 are taken by the links, never written through
        Del(c, "c1");                                 // the link's target content matches c1 but is not read
        Assert.Equal("c1\r\neth0", File.ReadAllText(victim));
        Assert.True(new FileInfo(Path.Join(NetDir, "10.1.1.2")).LinkTarget is not null);
        Assert.Equal("10.1.1.4", File.ReadAllText(Path.Join(NetDir, "last_reserved_ip.0"))); // the link was replaced
        Assert.Null(new FileInfo(Path.Join(NetDir, "last_reserved_ip.0")).LinkTarget);
    }

    [Fact]
    public void A_symlinked_network_directory_is_refused()
    {
        Directory.CreateDirectory(Path.Join(_dir.Path, "elsewhere"));
        Directory.CreateSymbolicLink(NetDir, Path.Join(_dir.Path, "elsewhere"));
        // Issue 9: a symlink in the part of dataDir the plugin writes through is code 7 naming the key.
        var e = Assert.Throws<CniException>(() => Add(Config(Small)));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.Contains("dataDir", e.Message);
    }

    [Fact]
    public void Files_get_the_reference_modes()
    {
        Add(Config(Small));
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(NetDir) & (UnixFileMode)0b111_111_111);
        Assert.Equal((UnixFileMode)0b110_100_100, File.GetUnixFileMode(Path.Join(NetDir, "10.1.1.2")));
        Assert.Equal((UnixFileMode)0b110_100_100, File.GetUnixFileMode(Path.Join(NetDir, "last_reserved_ip.0")));
        Assert.Equal((UnixFileMode)0b111_101_000, File.GetUnixFileMode(Path.Join(NetDir, "lock")));
        Assert.Equal(["10.1.1.2", "last_reserved_ip.0", "lock"], Directory.GetFiles(NetDir).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void Threads_allocating_in_one_store_get_distinct_addresses()
    {
        var c = Config("""[[{"subnet":"10.1.0.0/24"}]]""");
        var results = new string[40];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => results[i] = Addr(Add(c, $"t{i}")));
        Assert.Equal(results.Length, results.Distinct().Count());
        Assert.Equal(results.Length, Reserved().Count);
    }

    [Fact]
    public void Resolv_conf_file_fills_dns()
    {
        string rc = Path.Join(_dir.Path, "resolv.conf");
        File.WriteAllText(rc, "nameserver 10.0.0.53\nsearch example.com\n");
        var r = Add(Config(Small, $$""","resolvConf":"{{rc}}","routes":[{"dst":"0.0.0.0/0"}]"""));
        Assert.Equal(["10.0.0.53"], r.Dns.Nameservers);
        Assert.Equal(["example.com"], r.Dns.Search);
        Assert.Equal("0.0.0.0/0", r.Routes.Single().Destination.ToString());
    }

    List<string> Reserved() =>
        Directory.GetFiles(NetDir).Select(Path.GetFileName).Where(n => IpMath.TryParse(n, out _)).Order().ToList()!;
}
