// Metadata is optional in the API but a plain value in the model: absent decodes as empty.
extension ObjectMeta: EmptyWhenAbsent {
    public static var emptyValue: ObjectMeta { ObjectMeta() }
}

extension ListMeta: EmptyWhenAbsent {
    public static var emptyValue: ListMeta { ListMeta() }
}
