// A Linux CNI plugin: file modes, flock and the store layout are Linux-only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
