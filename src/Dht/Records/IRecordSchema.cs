namespace MoEMesh.Dht.Records;

/// <summary>
/// The rules of a part of the key space, set by the layer that owns it (Routing registers the key schema
/// of experts, prefixes and models). The DHT knows nothing of what keys mean; it asks each schema about
/// every record it is asked to store or finds in an answer, after its own checks of sizes, expiration and
/// owner names and before the signature is verified (the cheap checks first, so a record a schema refuses
/// costs no signature check), and neither stores nor believes a record a schema refuses.
/// </summary>
public interface IRecordSchema
{
    /// <summary>Why <paramref name="record"/> breaks this schema, or null when it keeps it or the schema does not own its key.</summary>
    string? Check(DhtRecord record);
}
