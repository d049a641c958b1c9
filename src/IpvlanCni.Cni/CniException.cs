namespace IpvlanCni.Cni;

/// <summary>The spec's error codes; ours start at 100.</summary>
public static class CniErrorCode
{
    public const int IncompatibleVersion = 1;
    public const int UnsupportedField = 2;
    public const int UnknownContainer = 3;
    public const int InvalidEnvironment = 4;
    public const int IoFailure = 5;
    public const int DecodeFailure = 6;
    public const int InvalidNetworkConfig = 7;
    public const int TryAgainLater = 11;
    public const int PluginNotAvailable = 50;
    public const int PluginNotAvailableLimitedConnectivity = 51;
    /// <summary>The kernel refused a netlink request.</summary>
    public const int KernelRefused = 100;
    /// <summary>No free address left in the range.</summary>
    public const int AddressesExhausted = 101;
    /// <summary>A delegated IPAM plugin failed.</summary>
    public const int IpamPluginFailed = 102;
    /// <summary>NAT rules could not be applied.</summary>
    public const int NatFailed = 103;
    /// <summary>The attachment, or CNI_IFNAME in the container, exists already.</summary>
    public const int AlreadyExists = 104;
    /// <summary>CHECK found the attachment different from what ADD made.</summary>
    public const int CheckFailed = 105;
    /// <summary>Anything else that went wrong inside the plugin.</summary>
    public const int Internal = 999;
}

/// <summary>An error the dispatcher writes as the spec's JSON: {"cniVersion","code","msg","details"}.</summary>
public sealed class CniException(int code, string message, string? details = null, Exception? inner = null)
    : Exception(message, inner)
{
    public int Code { get; } = code;
    public string? Details { get; } = details;

    /// <summary>
    /// Any failure as the spec's error: ours as thrown; a kernel refusal as 100 with the operation, errno and the
    /// kernel's extended-ack text; a file-system failure as 5; only a bug as 999. In words: the published binary
    /// carries .NET's resource keys, not its texts (UseSystemResourceKeys), so a bare message would read
    /// "IO_PathNotFound_Path".
    /// </summary>
    public static CniException From(Exception e)
    {
        string text = IsResourceKey(e.Message) ? "" : $": {e.Message}";
        return e switch
        {
            CniException cni => cni,
            IpvlanCni.Netlink.NetlinkException kernel => new(CniErrorCode.KernelRefused, kernel.Message, null, e),
            FileNotFoundException or DirectoryNotFoundException => new(CniErrorCode.IoFailure, $"a file or folder the plugin needs is missing{text}", e.GetType().Name, e),
            PathTooLongException => new(CniErrorCode.IoFailure, $"a path is too long for the file system{text}", e.GetType().Name, e),
            UnauthorizedAccessException => new(CniErrorCode.IoFailure, $"permission denied{text}", e.GetType().Name, e),
            IOException => new(CniErrorCode.IoFailure, $"I/O error{text}", e.GetType().Name, e),
            OutOfMemoryException => new(CniErrorCode.Internal, "out of memory", e.GetType().Name, e),
            _ => new(CniErrorCode.Internal, $"internal error ({e.GetType().Name}){text}", e.GetType().FullName, e),
        };
    }

    /// <summary>"IO_PathNotFound_Path" or "Arg_OutOfMemoryException, ...": letters and underscores up to the first comma.</summary>
    static bool IsResourceKey(string message)
    {
        int end = message.IndexOf(',');
        var head = end < 0 ? message.AsSpan() : message.AsSpan(0, end);
        return head.Length > 0 && head.Contains('_') && head[0] != '_' && !head.ContainsAnyExcept(KeyChars);
    }

    static readonly System.Buffers.SearchValues<char> KeyChars =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_");
}
