using System.Net.Sockets;
using System.Text;
using IpvlanCni.Agent;
using IpvlanCni.Cni;

namespace IpvlanCni.Ipam.Tests;

/// <summary>What the IPAM side does with answers our agent should never give.</summary>
public sealed class AgentAnswerTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(0)]
    [InlineData(1000)]
    [InlineData(-5)]
    public void ErrorCodeOutsideTheSpecRangeIsABrokenAnswer(long code)
    {
        var e = Assert.Throws<CniException>(() => AgentProtocol.ReadResponse(
            Encoding.UTF8.GetBytes($$"""{"ok":false,"code":{{code}},"msg":"x"}""")));
        Assert.Equal(CniErrorCode.IpamPluginFailed, e.Code);
        Assert.Equal($"agent response: code is {code}, outside the CNI range 1..999: the agent's answer is broken", e.Message);
    }

    [Fact]
    public void ErrorCodeInRangeIsRelayed()
    {
        var e = Assert.Throws<CniException>(() => AgentProtocol.ReadResponse(
            Encoding.UTF8.GetBytes("""{"ok":false,"code":11,"msg":"busy"}""")));
        Assert.Equal((11, "busy"), (e.Code, e.Message));
    }

    [Fact]
    public void LoneSurrogateInTheAgentsMessageIsDecodeFailure()
    {
        var e = Assert.Throws<CniException>(() => AgentProtocol.ReadResponse(
            Encoding.UTF8.GetBytes("""{"ok":false,"code":11,"msg":"\ud800"}""")));
        Assert.Equal(CniErrorCode.DecodeFailure, e.Code);
        Assert.StartsWith("msg holds an escape of a lone UTF-16 surrogate", e.Message);
    }

    [Fact]
    public void AddAnsweredWithEmptyIpsIsRefusedWithCode7()
    {
        var e = AddAgainst("""{"ok":true,"result":{"cniVersion":"1.0.0","ips":[]}}""");
        Assert.True(e.Code == CniErrorCode.InvalidNetworkConfig, e.Message);
        Assert.Contains("ips is empty", e.Message);
    }

    [Fact]
    public void LoneSurrogateInAgentSocketIsDecodeFailureNamingIt()
    {
        var request = TestNet.Request("""{"cniVersion":"1.0.0","name":"n","type":"ipvlan","ipam":{"type":"ipvlan-cni-ipam","node":"n1","etcdEndpoints":["http://127.0.0.1:2379"],"ranges":[[{"subnet":"10.20.0.0/24"}]],"agentSocket":"/run/\ud800"}}""");
        var e = Assert.Throws<CniException>(() => new StandaloneIpam().Add(request));
        Assert.True(e.Code == CniErrorCode.DecodeFailure, e.Message);
        Assert.StartsWith("ipam.agentSocket holds an escape of a lone UTF-16 surrogate", e.Message);
    }

    [Fact]
    public void RouteGatewayOfAnotherFamilyThanItsDestinationIsRefusedNamingIt()
    {
        using var doc = System.Text.Json.JsonDocument.Parse("""{"routes":[{"dst":"0.0.0.0/0"},{"dst":"10.0.0.0/8","gw":"fd00::1"}]}""");
        var e = Assert.Throws<CniException>(() => IpamJson.ParseRoutes(doc.RootElement, "ipam"));
        Assert.Equal(CniErrorCode.DecodeFailure, e.Code);
        Assert.Equal("ipam.routes[1].gw fd00::1 is not in the same address family as the destination/address beside it", e.Message);
    }

    /// <summary>An ADD through the standalone plugin against a one-shot agent that sends <paramref name="answer"/>.</summary>
    CniException AddAgainst(string answer)
    {
        string socketPath = Path.Combine(_dir.Path, "agent.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        listener.Listen(1);
        var agent = Task.Run(() =>
        {
            using var connection = listener.Accept();
            var buffer = new byte[65536];
            int length = 0;
            while (Array.IndexOf(buffer, (byte)'\n', 0, length) < 0)
                length += connection.Receive(buffer.AsSpan(length));
            connection.Send(Encoding.UTF8.GetBytes(answer + "\n"));
        });
        var request = TestNet.Request($$$"""{"cniVersion":"1.0.0","name":"n","type":"ipvlan","ipam":{"type":"ipvlan-cni-ipam","node":"n1","etcdEndpoints":["http://127.0.0.1:2379"],"ranges":[[{"subnet":"10.20.0.0/24"}]],"agentSocket":"{{{socketPath}}}"}}""");
        var e = Assert.Throws<CniException>(() => new StandaloneIpam().Add(request));
        Assert.True(agent.Wait(TimeSpan.FromSeconds(10)), "the fake agent was never asked");
        return e;
    }
}
