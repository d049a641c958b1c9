using System.Net;
using System.Text;
using IpvlanCni.Network;

namespace IpvlanCni.Cni.Tests;

public class ResultJsonTests
{
    // The reference's 0.3.x/0.4.0 shape: struct order, ips[].version, no mtu/socketPath/pciID, dns always present.
    const string Full04x = """
        {
            "cniVersion": "@V",
            "interfaces": [
                {
                    "name": "ipvl0",
                    "mac": "02:42:ac:11:00:02"
                },
                {
                    "name": "eth0",
                    "mac": "02:42:ac:11:00:03",
                    "sandbox": "/var/run/netns/test"
                }
            ],
            "ips": [
                {
                    "version": "4",
                    "interface": 1,
                    "address": "10.1.1.5/24",
                    "gateway": "10.1.1.1"
                },
                {
                    "version": "6",
                    "interface": 1,
                    "address": "fd00::5/64"
                }
            ],
            "routes": [
                {
                    "dst": "0.0.0.0/0",
                    "gw": "10.1.1.1"
                },
                {
                    "dst": "fd01::/64"
                }
            ],
            "dns": {
                "nameservers": [
                    "10.1.1.53"
                ],
                "domain": "example.org",
                "search": [
                    "example.org"
                ],
                "options": [
                    "ndots:2"
                ]
            }
        }
        """;

    // The reference's 1.x shape: keys sorted (Go marshals through a map), no ips[].version.
    const string Full100 = """
        {
            "cniVersion": "1.0.0",
            "dns": {
                "domain": "example.org",
                "nameservers": [
                    "10.1.1.53"
                ],
                "options": [
                    "ndots:2"
                ],
                "search": [
                    "example.org"
                ]
            },
            "interfaces": [
                {
                    "mac": "02:42:ac:11:00:02",
                    "mtu": 1500,
                    "name": "ipvl0"
                },
                {
                    "mac": "02:42:ac:11:00:03",
                    "mtu": 1500,
                    "name": "eth0",
                    "pciID": "0000:00:1f.6",
                    "sandbox": "/var/run/netns/test",
                    "socketPath": "/run/s.sock"
                }
            ],
            "ips": [
                {
                    "address": "10.1.1.5/24",
                    "gateway": "10.1.1.1",
                    "interface": 1
                },
                {
                    "address": "fd00::5/64",
                    "interface": 1
                }
            ],
            "routes": [
                {
                    "dst": "0.0.0.0/0",
                    "gw": "10.1.1.1"
                },
                {
                    "dst": "fd01::/64"
                }
            ]
        }
        """;

    // 1.1.0 adds the route keys; scope 0 is written (a pointer in Go), zero mtu/advmss/priority would not be.
    const string Routes110 = """
            "routes": [
                {
                    "advmss": 1360,
                    "dst": "0.0.0.0/0",
                    "gw": "10.1.1.1",
                    "mtu": 1400,
                    "priority": 10,
                    "scope": 0,
                    "table": 100
                },
                {
                    "dst": "fd01::/64"
                }
            ]
        }
        """;

    public static TheoryData<string> Pre100 => new() { "0.3.0", "0.3.1", "0.4.0" };
    public static TheoryData<string> AllVersions => new() { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0" };

    [Theory, MemberData(nameof(Pre100))]
    public void Pre100ResultHasTheReferenceShape(string version) =>
        Assert.Equal(Full04x.Replace("@V", version), CniResultJson.WriteString(Cni.FullResult(), version));

    [Fact]
    public void V100ResultHasTheReferenceShape() =>
        Assert.Equal(Full100, CniResultJson.WriteString(Cni.FullResult(), "1.0.0"));

    [Fact]
    public void V110ResultAddsRouteKeys()
    {
        string expected = Full100.Replace("\"1.0.0\"", "\"1.1.0\"");
        expected = expected[..expected.IndexOf("    \"routes\"", StringComparison.Ordinal)] + Routes110;
        Assert.Equal(expected, CniResultJson.WriteString(Cni.FullResult(), "1.1.0"));
    }

    [Theory]
    [InlineData("0.4.0", "{\n    \"cniVersion\": \"0.4.0\",\n    \"dns\": {}\n}")]
    [InlineData("0.3.1", "{\n    \"cniVersion\": \"0.3.1\",\n    \"dns\": {}\n}")]
    [InlineData("1.0.0", "{\n    \"cniVersion\": \"1.0.0\"\n}")]
    [InlineData("1.1.0", "{\n    \"cniVersion\": \"1.1.0\"\n}")]
    public void EmptyResultKeepsGoDnsQuirk(string version, string expected) =>
        Assert.Equal(expected, CniResultJson.WriteString(new CniResult(), version));

    [Fact]
    public void WritingAnUnsupportedVersionIsIncompatible() =>
        Assert.Equal(CniErrorCode.IncompatibleVersion, Assert.Throws<CniException>(() => CniResultJson.Write(new CniResult(), "0.2.0")).Code);

    [Theory, MemberData(nameof(AllVersions))]
    public void EveryVersionRoundTrips(string version)
    {
        var original = Cni.FullResult();
        var read = CniResultJson.Parse(CniResultJson.Write(original, version));
        Assert.Equal(version, read.CniVersion);
        // Write again in the same version: what the version can carry survives.
        Assert.Equal(CniResultJson.WriteString(original, version), CniResultJson.WriteString(read, version));
        Assert.Equal(original.Ips.Select(i => (i.Address, i.Gateway?.ToString(), i.Interface)), read.Ips.Select(i => (i.Address, i.Gateway?.ToString(), i.Interface)));
        Assert.Equal(original.Routes.Select(r => r.Destination), read.Routes.Select(r => r.Destination));
        Assert.Equal(original.Dns.Nameservers, read.Dns.Nameservers);
    }

    [Fact]
    public void V110CarriesEverything()
    {
        var read = CniResultJson.Parse(CniResultJson.Write(Cni.FullResult(), "1.1.0"));
        var route = read.Routes[0];
        Assert.Equal((1400, 1360, 10, 100, 0), (route.Mtu, route.AdvMss, route.Priority, route.Table, route.Scope));
        Assert.Equal("/run/s.sock", read.Interfaces[1].SocketPath);
        Assert.Equal("0000:00:1f.6", read.Interfaces[1].PciId);
        Assert.Equal(1500, read.Interfaces[1].Mtu);
    }

    [Theory]
    [InlineData("0.4.0", "1.1.0")]
    [InlineData("1.1.0", "0.3.0")]
    [InlineData("0.3.1", "1.0.0")]
    public void ConvertsAcrossVersions(string from, string to)
    {
        var read = CniResultJson.Parse(CniResultJson.Write(Cni.FullResult(), from));
        string text = CniResultJson.WriteString(read, to);
        Assert.Contains($"\"cniVersion\": \"{to}\"", text);
        Assert.Equal(CniVersions.IsPre100(to), text.Contains("\"version\": \"4\""));
        Assert.DoesNotContain("\"advmss\"", text); // never set when passing through a pre-1.1.0 shape or going down to one
    }

    [Fact]
    public void MissingCniVersionUsesTheFallback()
    {
        var read = CniResultJson.Parse(Encoding.UTF8.GetBytes("""{"ips":[{"version":"4","address":"10.0.0.2/24"}]}"""), "0.3.1");
        Assert.Equal("0.3.1", read.CniVersion);
        Assert.Equal(IpPrefix.Parse("10.0.0.2/24"), read.Ips[0].Address);
        Assert.Null(read.Ips[0].Interface);
    }

    [Theory]
    [InlineData("""{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2"}]}""", 6, "ips[0].address")]
    [InlineData("""{"cniVersion":"1.0.0","ips":[{"address":5}]}""", 6, "ips[0].address")]
    [InlineData("""{"cniVersion":"1.0.0","ips":[{}]}""", 7, "ips[0].address")]
    [InlineData("""{"cniVersion":"0.4.0","ips":[{"version":"6","address":"10.0.0.2/24"}]}""", 6, "ips[0].version")]
    [InlineData("""{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24","interface":0}]}""", 6, "ips[0].interface")]
    [InlineData("""{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24","gateway":"fd00::1"}]}""", 6, "ips[0].gateway")]
    [InlineData("""{"cniVersion":"1.0.0","routes":[{"dst":"10.0.0.0/8","gw":"10.0.0"}]}""", 6, "routes[0].gw")]
    [InlineData("""{"cniVersion":"1.1.0","routes":[{"dst":"10.0.0.0/8","mtu":"1500"}]}""", 6, "routes[0].mtu")]
    [InlineData("""{"cniVersion":"1.1.0","routes":[{"dst":"10.0.0.0/8","table":-1}]}""", 7, "routes[0].table")]
    [InlineData("""{"cniVersion":"1.0.0","interfaces":[{"mac":"x"}]}""", 7, "interfaces[0].name")]
    [InlineData("""{"cniVersion":"1.0.0","dns":{"nameservers":"10.0.0.1"}}""", 6, "dns.nameservers")]
    [InlineData("""{"cniVersion":"0.2.0"}""", 1, "cniVersion")]
    public void BadResultsNameTheField(string json, int code, string path)
    {
        var e = Assert.Throws<CniException>(() => CniResultJson.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(code, e.Code);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void ErrorObjectHasTheSpecShape()
    {
        var text = Encoding.UTF8.GetString(CniErrorJson.Write(new CniException(7, "Invalid Configuration", "Network 192.168.0.0/31 too small"), "1.1.0"));
        Assert.Equal("""
            {
                "cniVersion": "1.1.0",
                "code": 7,
                "msg": "Invalid Configuration",
                "details": "Network 192.168.0.0/31 too small"
            }
            """, text);
        var noDetails = Encoding.UTF8.GetString(CniErrorJson.Write(new CniException(11, "busy"), "0.4.0"));
        Assert.Equal("{\n    \"cniVersion\": \"0.4.0\",\n    \"code\": 11,\n    \"msg\": \"busy\"\n}", noDetails);
    }

    [Fact]
    public void ErrorObjectReadsBack()
    {
        Assert.True(CniErrorJson.TryRead(CniErrorJson.Write(new CniException(101, "no addresses", "range 10.0.0.0/30"), "1.0.0"), out var e));
        Assert.Equal((101, "no addresses", "range 10.0.0.0/30"), (e.Code, e.Message, e.Details));
        Assert.False(CniErrorJson.TryRead(CniResultJson.Write(new CniResult(), "1.0.0"), out _));
        Assert.False(CniErrorJson.TryRead("garbage"u8.ToArray(), out _));
    }

    [Fact]
    public void Ipv6GatewaysUseTheCompressedForm()
    {
        var result = new CniResult { Ips = [new CniIpConfig(IpPrefix.Parse("fd00:0:0::5/64")) { Gateway = IPAddress.Parse("fd00:0000::1") }] };
        string text = CniResultJson.WriteString(result, "1.0.0");
        Assert.Contains("\"address\": \"fd00::5/64\"", text);
        Assert.Contains("\"gateway\": \"fd00::1\"", text);
    }
}
