using IpvlanCni.Cni;

namespace IpvlanCni.Ipam.Tests;

public class ConfigTests
{
    static HostLocalConfig Parse(string ipam, string extra = "", string version = "1.0.0", string name = "net1",
        IReadOnlyList<KeyValuePair<string, string>>? args = null) =>
        ((HostLocalIpam)TestNet.Create(TestNet.Request(TestNet.Config(ipam, name, extra, version), args: args))).Config;

    [Fact]
    public void Ranges_legacy_and_runtime_ranges_merge_in_the_reference_order()
    {
        var c = Parse("""{"type":"host-local","subnet":"10.9.0.0/24","ranges":[[{"subnet":"10.1.1.0/24","rangeStart":"10.1.1.10","rangeEnd":"10.1.1.20","gateway":"10.1.1.254"}],[{"subnet":"fd00::/64"}]],"routes":[{"dst":"0.0.0.0/0"},{"dst":"192.168.0.0/16","gw":"10.1.1.254"}]}""",
            extra: ""","runtimeConfig":{"ipRanges":[[{"subnet":"10.8.0.0/24"}]]}""");
        Assert.Equal(["10.8.0.1-10.8.0.254", "10.9.0.1-10.9.0.254", "10.1.1.10-10.1.1.20", "fd00::1-fd00::ffff:ffff:ffff:ffff"],
            c.RangeSets.Select(s => s.ToString()));
        Assert.Equal("10.1.1.254", c.RangeSets[2].Ranges[0].Gateway.ToString());
        Assert.Equal(HostLocalConfig.DefaultDataDir, c.DataDir);
        Assert.Equal(2, c.Routes.Count);
        Assert.Null(c.Routes[0].Gateway);
        Assert.Equal("10.1.1.254", c.Routes[1].Gateway!.ToString());
    }

    [Fact]
    public void Requested_ips_come_from_cni_args_args_and_runtime_config()
    {
        var c = Parse("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24"}]]}""",
            extra: ""","args":{"cni":{"ips":["10.1.1.6/24"]}},"runtimeConfig":{"ips":["10.1.1.7","10.1.1.5"]}""",
            args: [new("IgnoreUnknown", "1"), new("IP", "10.1.1.5,fd00::5")]);
        Assert.Equal(["10.1.1.5", "fd00::5", "10.1.1.6", "10.1.1.7"], c.RequestedIps.Select(IpMath.Format));
    }

    [Fact]
    public void Keys_match_case_insensitively_like_go()
    {
        var c = Parse("""{"type":"host-local","Ranges":[[{"Subnet":"10.1.1.0/24","RANGESTART":"10.1.1.50"}]]}""");
        Assert.Equal("10.1.1.50", c.RangeSets[0].Ranges[0].Start.ToString());
    }

    [Theory]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/33"}]]}""", "ipam.ranges[0][0].subnet: \"10.1.1.0/33\" is not a CIDR")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1"}]]}""", "ipam.ranges[0][0].subnet: \"10.1.1\" is not a CIDR")]
    [InlineData("""{"type":"host-local","ranges":[[{"rangeStart":"10.1.1.1"}]]}""", "ipam.ranges[0][0].subnet: missing")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.5/24"}]]}""", "ipam.ranges[0][0].subnet: \"10.1.1.5/24\" has host bits set")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/31"}]]}""", "ipam.ranges[0][0].subnet: network 10.1.1.0/31 too small")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.1/32"}]]}""", "ipam.ranges[0][0].subnet: network 10.1.1.1/32 too small")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"fd00::/127"}]]}""", "ipam.ranges[0][0].subnet: network fd00::/127 too small")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24","rangeStart":"10.1.2.1"}]]}""", "ipam.ranges[0][0].rangeStart: 10.1.2.1 is not in network 10.1.1.0/24")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24","rangeEnd":"10.1.2.1"}]]}""", "ipam.ranges[0][0].rangeEnd: 10.1.2.1 is not in network")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24","rangeStart":"10.1.1.0"}]]}""", "ipam.ranges[0][0].rangeStart: 10.1.1.0 is the network address")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24","rangeEnd":"10.1.1.255"}]]}""", "ipam.ranges[0][0].rangeEnd: 10.1.1.255 is the broadcast address")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24","rangeStart":"10.1.1.9","rangeEnd":"10.1.1.8"}]]}""", "ipam.ranges[0][0].rangeEnd: 10.1.1.8 is before rangeStart")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24","gateway":"fd00::1"}]]}""", "ipam.ranges[0][0].gateway:")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24","gateway":"10.1.1"}]]}""", "ipam.ranges[0][0].gateway: \"10.1.1\" is not an IP address")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24"},{"subnet":"fd00::/64"}]]}""", "ipam.ranges[0][1].subnet: mixed address families")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.0.0/16"},{"subnet":"10.1.1.0/24"}]]}""", "ipam.ranges[0][1]: range 10.1.1.1-10.1.1.254 overlaps with ipam.ranges[0][0]")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.0.0/16"}],[{"subnet":"10.1.1.0/24"}]]}""", "ipam.ranges[1]: range set 10.1.1.1-10.1.1.254 overlaps with ipam.ranges[0]")]
    [InlineData("""{"type":"host-local","ranges":[[]]}""", "ipam.ranges[0]: empty range set")]
    [InlineData("""{"type":"host-local"}""", "ipam: no IP ranges specified")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24"}]],"routes":[{"dst":"10.0.0.0"}]}""", "ipam.routes[0].dst: \"10.0.0.0\" is not a CIDR")]
    [InlineData("""{"type":"static","addresses":[{"address":"10.1.1.1"}]}""", "ipam.addresses[0].address: \"10.1.1.1\" is not a CIDR")]
    [InlineData("""{"type":"../bin/sh"}""", "ipam.type: \"../bin/sh\" is not a plugin name")]
    [InlineData("""{"ranges":[]}""", "ipam.type: missing")]
    public void Invalid_values_are_code_7_naming_the_field(string ipam, string message) =>
        AssertRefused(ipam, CniErrorCode.InvalidNetworkConfig, message);

    [Theory]
    [InlineData("""{"type":"host-local","ranges":{}}""", "ipam.ranges: expected an array")]
    [InlineData("""{"type":"host-local","ranges":[{"subnet":"10.1.1.0/24"}]}""", "ipam.ranges[0]: expected an array of ranges")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":24}]]}""", "ipam.ranges[0][0].subnet: expected a string")]
    [InlineData("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24"}]],"dataDir":1}""", "ipam.dataDir: expected a string")]
    [InlineData("""{"type":7}""", "ipam.type: expected a string")]
    public void Wrong_json_types_are_code_6(string ipam, string message) =>
        AssertRefused(ipam, CniErrorCode.DecodeFailure, message);

    static void AssertRefused(string ipam, int code, string message)
    {
        var e = Assert.Throws<CniException>(() => Parse(ipam));
        Assert.Equal(code, e.Code);
        Assert.StartsWith(message, e.Message);
    }

    [Theory]
    [InlineData("../etc")]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("")]
    public void Network_names_that_escape_the_data_dir_are_refused(string name)
    {
        // A request cannot even hold such a name: the dispatcher parses it into a NetworkName, which refuses it.
        var e = Assert.Throws<CniException>(() => Parse("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24"}]]}""", name: name));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.StartsWith("name ", e.Message);
    }

    [Fact]
    public void Old_cni_versions_get_one_address_per_family()
    {
        var e = Assert.Throws<CniException>(() =>
            Parse("""{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24"}],[{"subnet":"10.1.2.0/24"}]]}""", version: "0.2.0"));
        Assert.Contains("does not support more than 1 address per family", e.Message);
    }

    [Fact]
    public void Resolv_conf_lines_become_dns()
    {
        var dns = ResolvConf.ParseLines(["# comment", "nameserver 10.0.0.53", "nameserver fd00::53", "domain example.com",
            "search a.example b.example", "options ndots:5 edns0", "; other", "bogus"]);
        Assert.Equal(["10.0.0.53", "fd00::53"], dns.Nameservers);
        Assert.Equal("example.com", dns.Domain);
        Assert.Equal(["a.example", "b.example"], dns.Search);
        Assert.Equal(["ndots:5", "edns0"], dns.Options);
    }
}
